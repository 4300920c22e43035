"""Agreement between two classifiers on a corpus (DESIGN §3): pure functions over probability arrays."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

TOLERANCE = 1e-3


def top_margins(probabilities: np.ndarray) -> np.ndarray:
    """Per row: top-1 minus top-2 probability."""
    ordered = np.sort(np.asarray(probabilities, dtype=np.float64), axis=1)
    return ordered[:, -1] - ordered[:, -2]


@dataclass(frozen=True)
class Agreement:
    """How two ``n×classes`` probability arrays differ, image by image."""

    names: tuple[str, ...]
    max_abs_diff: np.ndarray  # per image
    top1_mismatches: tuple[str, ...]  # images whose prediction differs although the reference margin allows none
    tolerance: float

    @property
    def worst(self) -> float:
        return float(self.max_abs_diff.max()) if self.max_abs_diff.size else 0.0

    @property
    def over_tolerance(self) -> tuple[str, ...]:
        return tuple(n for n, d in zip(self.names, self.max_abs_diff, strict=True) if d > self.tolerance)

    @property
    def ok(self) -> bool:
        return not self.over_tolerance and not self.top1_mismatches

    def explain(self) -> str:
        lines = [f"max |Δp| = {self.worst:.3e} (tolerance {self.tolerance:.0e})"]
        lines += [f"  |Δp| over tolerance: {name}" for name in self.over_tolerance]
        lines += [f"  top-1 differs with a decisive margin: {name}" for name in self.top1_mismatches]
        return "\n".join(lines)


def compare(
    names: Sequence[str], reference: np.ndarray, candidate: np.ndarray, tolerance: float = TOLERANCE
) -> Agreement:
    """Compare ``candidate`` to ``reference``; a top-1 difference counts only where the reference's
    top-1/top-2 margin exceeds ``tolerance`` (a closer call may flip within the allowed |Δp|)."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape or reference.shape[0] != len(names):
        raise ValueError(f"shapes differ: {reference.shape} vs {candidate.shape} for {len(names)} names")
    differences = np.abs(reference - candidate).max(axis=1)
    decisive = top_margins(reference) > tolerance
    # argmax takes the lowest index on a tie, as the contract says.
    flipped = (reference.argmax(axis=1) != candidate.argmax(axis=1)) & decisive
    mismatches = tuple(name for name, bad in zip(names, flipped, strict=True) if bad)
    return Agreement(tuple(names), differences, mismatches, tolerance)


def disagreements(
    names: Sequence[str],
    served: Mapping[str, np.ndarray],
    reference: np.ndarray | None = None,
    report: Callable[[str], None] = print,
) -> list[str]:
    """Every service against ``reference`` (when given) and every pair of services against each other; each
    comparison is reported, and the failing ones are returned as explanations (empty: all agree)."""
    pairs: list[tuple[str, np.ndarray, str, np.ndarray]] = []
    if reference is not None:
        pairs += [
            (name, probabilities, "the in-process reference", reference) for name, probabilities in served.items()
        ]
    pairs += [(first, served[first], second, served[second]) for first, second in combinations(served, 2)]
    failures = []
    for first, candidate, second, baseline in pairs:
        result = compare(names, baseline, candidate)
        report(f"{first} vs {second}: {result.explain()}")
        if not result.ok:
            failures.append(f"{first} vs {second}:\n{result.explain()}")
    return failures
