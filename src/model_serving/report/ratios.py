"""Ratios between services and the assertions on them: pure functions over the report's figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# (numerator, denominator) per ratio name, as the report names them.
PAIRS = {
    "onnx_over_torch": ("onnx-serving", "torch-serving"),
    "rust_over_onnx": ("rust-onnx-serving", "onnx-serving"),
    "rust_over_torch": ("rust-onnx-serving", "torch-serving"),
}


def ratios(figures: Mapping[str, float | None]) -> dict[str, float]:
    """``figures`` by service → the ratios whose two services both have a figure."""
    result = {}
    for name, (top, bottom) in PAIRS.items():
        a, b = figures.get(top), figures.get(bottom)
        if a is not None and b is not None and b != 0:
            result[name] = round(a / b, 4)
    return result


def evaluate(all_ratios: Mapping[str, Mapping[str, float]], thresholds: Mapping[str, float]) -> list[dict[str, Any]]:
    """One assertion per threshold ``<metric>.<ratio>.<min|max>``; a ratio not measured is reported, not passed."""
    results = []
    for key, threshold in sorted(thresholds.items()):
        metric, ratio, bound = key.rsplit(".", 2)
        measured = all_ratios.get(metric, {}).get(ratio)
        if bound not in ("min", "max"):
            raise ValueError(f"threshold {key!r} must end in .min or .max")
        passed = None if measured is None else (measured >= threshold if bound == "min" else measured <= threshold)
        results.append({"name": key, "measured": measured, "threshold": threshold, "passed": passed})
    return results


def describe_failure(assertion: Mapping[str, Any]) -> str:
    sign = ">=" if assertion["name"].endswith(".min") else "<="
    return f"{assertion['name']}: measured {assertion['measured']}, required {sign} {assertion['threshold']}"
