"""PNG plots of a report: throughput, latency percentiles, memory over time, image size, start-up."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display here or in CI

import matplotlib.pyplot as plt

PERCENTILES = ("p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99", "max")


def _bar(path: Path, title: str, ylabel: str, values: Mapping[str, float | None]) -> None:
    names = [n for n, v in values.items() if v is not None]
    figure, axes = plt.subplots(figsize=(6, 4))
    bars = axes.bar(
        names, [float(values[n] or 0) for n in names], color=["#d62728", "#1f77b4", "#2ca02c"][: len(names)]
    )
    axes.bar_label(bars, fmt="%.1f")
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_plots(report: Mapping[str, Any], folder: Path) -> list[Path]:
    services = report["services"]
    written = []

    path = folder / "throughput.png"
    _bar(path, "Throughput", "requests per second", {n: s.get("load", {}).get("rps") for n, s in services.items()})
    written.append(path)

    path = folder / "image_size.png"
    _bar(path, "Image size", "MB", {n: s["image"]["size_mb"] for n, s in services.items()})
    written.append(path)

    figure, axes = plt.subplots(figsize=(7, 4))
    for name, s in services.items():
        latency = s.get("load", {}).get("latency_ms")
        if latency:
            axes.plot(PERCENTILES, [latency[k] for k in PERCENTILES], marker="o", label=name)
    axes.set_title("Latency percentiles")
    axes.set_ylabel("ms")
    axes.set_yscale("log")
    axes.legend()
    figure.tight_layout()
    path = folder / "latency_percentiles.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    written.append(path)

    figure, axes = plt.subplots(figsize=(7, 4))
    for name, s in services.items():
        series = s.get("memory_mb", {}).get("series") or []
        if series:
            axes.plot([t for t, _ in series], [v for _, v in series], label=name)
    axes.set_title("Memory during the load run (usage minus inactive file cache)")
    axes.set_xlabel("seconds")
    axes.set_ylabel("MB")
    axes.legend()
    figure.tight_layout()
    path = folder / "memory.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    written.append(path)

    figure, axes = plt.subplots(figsize=(6, 4))
    names = [n for n, s in services.items() if s.get("startup_s")]
    if names:
        axes.boxplot([services[n]["startup_s"]["samples"] for n in names], tick_labels=names)
    axes.set_title("Start-up: start call to first 200 on GET /")
    axes.set_ylabel("seconds")
    figure.tight_layout()
    path = folder / "startup.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    written.append(path)
    return written
