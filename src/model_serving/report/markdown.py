"""Markdown pieces the summary's sections share: cells, tables, intervals, plot names."""

from __future__ import annotations

from typing import Any

from model_serving.report.sections import IntervalFigure

PLOT_NAME = "where_the_time_goes.png"
SWEEP_PLOT_NAME = "latency_vs_throughput.png"
SIZES_PLOT_NAME = "rps_vs_megapixels.png"


def cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def interval_cell(figure: IntervalFigure) -> str:
    """``centre [low, high]``, or the figure alone from one round (no interval)."""
    if figure.rounds < 2:
        return f"{figure.centre:.2f} (1 round)"
    return f"{figure.centre:.2f} [{figure.low:.2f}, {figure.high:.2f}]"
