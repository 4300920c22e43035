"""Ratios between services and the assertions on them: pure functions over the report's figures."""

from __future__ import annotations

from collections.abc import Mapping

from model_serving.report.sections import Assertion, IntervalFigure
from model_serving.services import RATIO_PAIRS


def ratios(figures: Mapping[str, float | None]) -> dict[str, float]:
    """``figures`` by service → the ratios whose two services both have a figure."""
    result = {}
    for name, (top, bottom) in RATIO_PAIRS.items():
        a, b = figures.get(top), figures.get(bottom)
        if a is not None and b is not None and b != 0:
            result[name] = round(a / b, 4)
    return result


def evaluate(
    all_ratios: Mapping[str, Mapping[str, float]],
    thresholds: Mapping[str, float],
    intervals: Mapping[str, Mapping[str, IntervalFigure | None]] | None = None,
    bound_on: str = "centre",
) -> list[Assertion]:
    """One assertion per threshold ``<metric>.<ratio>.<min|max>``; a ratio not measured is reported, not passed.

    A ratio with an interval (``intervals[metric][ratio]``) is checked, with ``bound_on="interval"``, at the
    interval's end on the threshold's side: a .min must hold for the low end, a .max for the high end.
    """
    results = []
    for key, threshold in sorted(thresholds.items()):
        metric, ratio, bound = key.rsplit(".", 2)
        if bound not in ("min", "max"):
            raise ValueError(f"threshold {key!r} must end in .min or .max")
        measured = all_ratios.get(metric, {}).get(ratio)
        interval = (intervals or {}).get(metric, {}).get(ratio)
        checked = measured
        if bound_on == "interval" and interval is not None:
            checked = interval.low if bound == "min" else interval.high
        passed = None if checked is None else (checked >= threshold if bound == "min" else checked <= threshold)
        results.append(
            Assertion(
                name=key,
                measured=measured,
                threshold=threshold,
                passed=passed,
                interval=(interval.low, interval.high) if interval is not None else None,
                checked=checked if interval is not None else None,
            )
        )
    return results


def describe_failure(assertion: Assertion) -> str:
    sign = ">=" if assertion.name.endswith(".min") else "<="
    where = ""
    if assertion.interval is not None:
        low, high = assertion.interval
        where = f" [95 % interval {low}, {high}; checked {assertion.checked}]"
    return f"{assertion.name}: measured {assertion.measured}{where}, required {sign} {assertion.threshold}"
