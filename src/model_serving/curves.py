"""Pure figures over load curves: the knee of a concurrency sweep, and the search for the capacity under a
latency bound (the highest arrival rate whose p99 stays within it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


def knee(points: Sequence[tuple[int, float]], fraction: float = 0.95) -> int | None:
    """The smallest concurrency whose req/s reaches ``fraction`` of the best of the sweep (``points``: (c, req/s)
    of the levels that completed); None when there are none."""
    if not points:
        return None
    best = max(rps for _, rps in points)
    return min(c for c, rps in points if rps >= fraction * best)


@dataclass(frozen=True)
class Probe:
    """One open-loop run of the search: the arrival rate asked for, what was achieved, its p99 (None when
    nothing answered), and whether the run met the bound."""

    rate: float
    achieved: float | None
    p99_ms: float | None
    met: bool


def meets_bound(
    rate: float, achieved: float | None, p99_ms: float | None, slo_ms: float, keep_up: float = 0.95
) -> bool:
    """A rate is carried when the service answers (nearly) all of it within the run and p99 stays within the bound:
    a short run above capacity can keep p99 low (the queue has not grown yet) but falls behind the schedule."""
    return achieved is not None and p99_ms is not None and achieved >= keep_up * rate and p99_ms <= slo_ms


@dataclass(frozen=True)
class Capacity:
    """The highest rate that met the bound (None when even the lowest did not) and every probe, in order."""

    rate: float | None
    probes: tuple[Probe, ...]
    bracket: tuple[float, float]  # where the answer lies: highest met, lowest missed (the search's resolution)
    at_least: bool = False  # the highest rate of the search met the bound: the capacity may be higher


def search_capacity(probe: Callable[[float], Probe], low: float, high: float, steps: int) -> Capacity:
    """Bisection over arrival rates in ``[low, high]`` with ``steps`` probes at most; ``probe(rate)`` runs the load
    and judges it (meets_bound).

    The first probe is at ``low``; if it misses, the search stops (the service cannot carry even that). Then it
    probes ``high``; if that meets the bound, the answer is ``high`` (at least). Otherwise each step halves the
    bracket between the highest rate met and the lowest missed.
    """
    if not 0 < low < high:
        raise ValueError(f"the search needs 0 < low < high, got {low}, {high}")
    if steps < 2:
        raise ValueError("a capacity search needs at least two probes")
    probes: list[Probe] = []

    def measure(rate: float) -> bool:
        probes.append(probe(round(rate, 2)))
        return probes[-1].met

    if not measure(low):
        return Capacity(None, tuple(probes), (0.0, round(low, 2)))
    if measure(high):
        return Capacity(round(high, 2), tuple(probes), (round(high, 2), round(high, 2)), at_least=True)
    met, missed = low, high
    while len(probes) < steps:
        middle = (met + missed) / 2
        if measure(middle):
            met = middle
        else:
            missed = middle
    return Capacity(round(met, 2), tuple(probes), (round(met, 2), round(missed, 2)))
