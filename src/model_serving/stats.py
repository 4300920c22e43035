"""Pure statistics over samples."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# Student's t, two-sided 95 % (the 0.975 quantile), by degrees of freedom 1–30; beyond, the normal's 1.96 is
# within 2 %. Tabulated rather than computed: the harness has no scipy.
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def summary(samples: Sequence[float]) -> dict[str, float | list[float]]:
    """median, mean, min, max and the samples themselves (rounded for reports)."""
    if not samples:
        raise ValueError("no samples")
    return {
        "median": round(statistics.median(samples), 4),
        "mean": round(statistics.fmean(samples), 4),
        "min": round(min(samples), 4),
        "max": round(max(samples), 4),
        "samples": [round(s, 4) for s in samples],
    }


@dataclass(frozen=True)
class Interval:
    """A 95 % interval around ``centre`` (a geometric mean); ``median`` is the samples' own; ``low == high ==
    centre`` from a single sample (no spread known)."""

    centre: float
    low: float
    high: float
    samples: int
    median: float

    def excludes(self, value: float) -> bool:
        return self.samples > 1 and not self.low <= value <= self.high

    @property
    def half_width(self) -> float:
        """Half the interval's width relative to its centre (0.08: ± 8 %)."""
        return (self.high - self.low) / 2 / self.centre


def t_quantile_975(degrees_of_freedom: int) -> float:
    if degrees_of_freedom < 1:
        raise ValueError("a t interval needs at least two samples")
    return _T_975[degrees_of_freedom - 1] if degrees_of_freedom <= len(_T_975) else 1.96


def log_interval(samples: Sequence[float]) -> Interval:
    """The geometric mean of positive ``samples`` with a t interval on their logs: rates and ratios spread
    multiplicatively (a machine 20 % slower scales every figure), so their spread is symmetric on a log scale."""
    if not samples:
        raise ValueError("no samples")
    if any(value <= 0 for value in samples):
        raise ValueError(f"a log interval needs positive figures, got {list(samples)}")
    logs = [math.log(value) for value in samples]
    centre = statistics.fmean(logs)
    median = round(statistics.median(samples), 4)
    if len(logs) == 1:
        value = round(math.exp(centre), 4)
        return Interval(value, value, value, 1, median)
    margin = t_quantile_975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return Interval(
        round(math.exp(centre), 4),
        round(math.exp(centre - margin), 4),
        round(math.exp(centre + margin), 4),
        len(logs),
        median,
    )


def ratio_interval(pairs: Sequence[tuple[float, float]]) -> Interval:
    """``a / b`` over paired rounds (log_interval of the ratios): pairing cancels what both sides of a round
    shared, the machine's speed then."""
    if not pairs:
        raise ValueError("no pairs")
    if any(a <= 0 or b <= 0 for a, b in pairs):
        raise ValueError(f"ratios need positive figures, got {list(pairs)}")
    return log_interval([a / b for a, b in pairs])
