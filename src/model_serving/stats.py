"""Pure statistics over samples."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


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
