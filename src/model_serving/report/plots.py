"""PNG plots of a report: throughput, latency percentiles, memory over time, image size, start-up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display here or in CI

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from model_serving.report.breakdown import OTHER, PARTS, breakdowns
from model_serving.report.markdown import PLOT_NAME, SIZES_PLOT_NAME, SWEEP_PLOT_NAME
from model_serving.report.sections import Report, ServiceSection
from model_serving.services import COLOURS

PERCENTILES = ("p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99", "max")
STAGE_COLOURS = dict(zip((*PARTS, OTHER), plt.get_cmap("tab10").colors, strict=False))


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


def _where_the_time_goes(path: Path, services: Mapping[str, ServiceSection]) -> None:
    """One panel per place measured (c=1, the load's c, in-process); a stacked bar per service, a segment per stage."""
    panels: dict[str, dict[str, dict[str, float]]] = {}
    for name, section in services.items():
        for row in breakdowns(section):
            segments = dict(row.parts_ms)
            if row.other_ms is not None:
                segments[OTHER] = max(0.0, row.other_ms)
            panels.setdefault(row.label, {})[name] = segments
    figure, axes_row = plt.subplots(1, max(1, len(panels)), figsize=(4.5 * max(1, len(panels)), 4.5), squeeze=False)
    try:
        for axes, (label, bars) in zip(axes_row[0], panels.items(), strict=False):
            names = list(bars)
            bottoms = [0.0] * len(names)
            for stage in (*PARTS, OTHER):
                heights = [bars[n].get(stage, 0.0) for n in names]
                if any(heights):
                    axes.bar(names, heights, bottom=bottoms, label=stage, color=STAGE_COLOURS[stage])
                    bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
            axes.set_title("in-process, one thread" if label == "in-process" else f"in the service, {label}")
            axes.set_ylabel("ms per request (mean)")
            axes.tick_params(axis="x", labelrotation=15)
        if panels:
            handles = {h.get_label(): h for axes in axes_row[0] for h in axes.containers}
            figure.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles))
        figure.suptitle("Where the time goes: mean ms per request, by stage")
        figure.tight_layout(rect=(0, 0.07, 1, 1))
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)


def write_plots(report: Report, folder: Path) -> list[Path]:
    services = report.services
    paths = {name: folder / f"{name}.png" for name in ("throughput", "image_size", "latency_percentiles", "memory")}
    paths["startup"] = folder / "startup.png"
    paths["where_the_time_goes"] = folder / PLOT_NAME
    _where_the_time_goes(paths["where_the_time_goes"], services)

    _bars(
        paths["throughput"],
        "Throughput",
        "requests per second",
        {n: s.load.rps if s.load else None for n, s in services.items()},
    )
    _bars(
        paths["image_size"], "Image size", "MB", {n: s.image.size_mb if s.image else None for n, s in services.items()}
    )

    with _figure(paths["latency_percentiles"], "Latency percentiles", "ms") as axes:
        for name, s in services.items():
            if s.load and (latency := s.load.latency_ms):
                axes.plot(
                    PERCENTILES,
                    [getattr(latency, k) for k in PERCENTILES],
                    marker="o",
                    label=name,
                    color=COLOURS.get(name),
                )
        if axes.get_lines():
            axes.set_yscale("log")
            axes.legend()

    with _figure(paths["memory"], "Memory during the load run (usage minus inactive file cache)", "MB") as axes:
        for name, s in services.items():
            if s.memory_mb and (series := s.memory_mb.series):
                axes.plot([t for t, _ in series], [v for _, v in series], label=name, color=COLOURS.get(name))
        axes.set_xlabel("seconds")
        if axes.get_lines():
            axes.legend()

    with _figure(paths["startup"], "Start-up: start call to first 200 on GET /", "seconds", (6, 4)) as axes:
        startups = {n: s.startup_s.samples for n, s in services.items() if s.startup_s}
        if startups:
            axes.boxplot(list(startups.values()), tick_labels=list(startups))
    if any(s.sweep is not None for s in services.values()):
        paths["sweep"] = folder / SWEEP_PLOT_NAME
        _latency_against_throughput(paths["sweep"], services)
    if any(s.sizes is not None for s in services.values()):
        paths["sizes"] = folder / SIZES_PLOT_NAME
        _throughput_against_size(paths["sizes"], services)
    return list(paths.values())


def _latency_against_throughput(path: Path, services: Mapping[str, ServiceSection]) -> None:
    """The sweep: p50 (solid) and p99 (dashed) against req/s, one line per service, each point labelled with c."""
    with _figure(path, "Concurrency sweep: latency against throughput", "latency ms (log)", (8, 5)) as axes:
        for name, s in services.items():
            # (c, req/s, latency) of the levels that completed
            points = [
                (p.concurrency, p.rps, p.latency_ms)
                for p in (s.sweep.points if s.sweep else [])
                if p.rps is not None and p.latency_ms is not None
            ]
            rps = [r for _, r, _ in points]
            for key, style in (("p50", "-"), ("p99", "--")):
                latency = [getattr(percentiles, key) for _, _, percentiles in points]
                axes.plot(rps, latency, style, marker="o", color=COLOURS.get(name), label=f"{name} {key}")
                for (concurrency, _, _), x, y in zip(points, rps, latency, strict=True):
                    axes.annotate(f"c={concurrency}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        axes.set_xlabel("requests per second")
        if axes.get_lines():
            axes.set_yscale("log")
            axes.legend(fontsize=8, loc="upper left")


def _throughput_against_size(path: Path, services: Mapping[str, ServiceSection]) -> None:
    with _figure(path, "Throughput against payload size", "requests per second") as axes:
        for name, s in services.items():
            points = [p for p in s.sizes or [] if p.rps is not None]
            axes.plot(
                [p.megapixels for p in points],
                [p.rps for p in points],
                marker="o",
                label=name,
                color=COLOURS.get(name),
            )
        axes.set_xlabel("megapixels (log)")
        if axes.get_lines():
            axes.set_xscale("log")
            axes.legend()
