"""PNG plots of a report: throughput, latency percentiles, memory over time, image size, start-up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display here or in CI

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

PERCENTILES = ("p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99", "max")
COLOURS = {"torch-serving": "#d62728", "onnx-serving": "#1f77b4", "rust-onnx-serving": "#2ca02c"}


@contextmanager
def _figure(path: Path, title: str, ylabel: str, size: tuple[float, float] = (7, 4)) -> Iterator[Axes]:
    figure, axes = plt.subplots(figsize=size)
    try:
        yield axes
        axes.set_title(title)
        axes.set_ylabel(ylabel)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)


def _bars(path: Path, title: str, ylabel: str, values: Mapping[str, float | None]) -> None:
    names = [n for n, v in values.items() if v is not None]
    with _figure(path, title, ylabel, (6, 4)) as axes:
        bars = axes.bar(names, [float(values[n] or 0) for n in names], color=[COLOURS.get(n) for n in names])
        axes.bar_label(bars, fmt="%.1f")


def write_plots(report: Mapping[str, Any], folder: Path) -> list[Path]:
    services = report["services"]
    paths = {name: folder / f"{name}.png" for name in ("throughput", "image_size", "latency_percentiles", "memory")}
    paths["startup"] = folder / "startup.png"

    _bars(
        paths["throughput"],
        "Throughput",
        "requests per second",
        {n: s.get("load", {}).get("rps") for n, s in services.items()},
    )
    _bars(paths["image_size"], "Image size", "MB", {n: s["image"]["size_mb"] for n, s in services.items()})

    with _figure(paths["latency_percentiles"], "Latency percentiles", "ms") as axes:
        for name, s in services.items():
            if latency := s.get("load", {}).get("latency_ms"):
                axes.plot(
                    PERCENTILES, [latency[k] for k in PERCENTILES], marker="o", label=name, color=COLOURS.get(name)
                )
        if axes.get_lines():
            axes.set_yscale("log")
            axes.legend()

    with _figure(paths["memory"], "Memory during the load run (usage minus inactive file cache)", "MB") as axes:
        for name, s in services.items():
            if series := s.get("memory_mb", {}).get("series"):
                axes.plot([t for t, _ in series], [v for _, v in series], label=name, color=COLOURS.get(name))
        axes.set_xlabel("seconds")
        if axes.get_lines():
            axes.legend()

    with _figure(paths["startup"], "Start-up: start call to first 200 on GET /", "seconds", (6, 4)) as axes:
        names = [n for n, s in services.items() if s.get("startup_s")]
        if names:
            axes.boxplot([services[n]["startup_s"]["samples"] for n in names], tick_labels=names)
    return list(paths.values())
