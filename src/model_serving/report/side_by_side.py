"""The summary's sections for what was measured with the services side by side: the headline (capacity under the
latency bound beside saturated req/s), the load rounds, the concurrency sweep, the open-loop runs and the
payload sizes. Each reads only the report's fields (report/sections)."""

from __future__ import annotations

from collections.abc import Mapping

from model_serving.report.markdown import SIZES_PLOT_NAME, SWEEP_PLOT_NAME, cell, interval_cell, table
from model_serving.report.sections import CapacityFigures, Report, RoundsFigures


def _capacity_cell(capacity: CapacityFigures | None) -> str:
    if capacity is None:
        return "–"
    if capacity.rate is None:
        return f"none (not even {capacity.bracket[1]:g} req/s)"
    if capacity.at_least:
        return f"≥ {capacity.rate:.1f} (the search's top)"
    low, high = capacity.bracket
    return f"{capacity.rate:.1f} (between {low:g} and {high:g})"


def headline(report: Report) -> list[str]:
    """What a user chooses by: the highest arrival rate each service carries within the bound, and its saturated
    req/s over the rounds."""
    services, config = report.services, report.config
    if not any(s.capacity is not None or s.rounds is not None for s in services.values()):
        return []
    rows = [
        [
            f"`{name}`",
            _capacity_cell(s.capacity),
            interval_cell(s.rounds.rps) if s.rounds and s.rounds.rps else "–",
            cell(s.sweep.knee_concurrency if s.sweep else None),
        ]
        for name, s in services.items()
    ]
    capacity_ratios = report.ratios.capacity_rps
    lines = [
        "",
        "## Headline",
        "",
        *table(
            [
                "service",
                f"capacity: req/s carried with p99 ≤ {cell(config.slo_ms, 0)} ms (open loop)",
                "saturated req/s (closed loop, rounds)",
                "knee (c)",
            ],
            rows,
        ),
    ]
    if capacity_ratios:
        cells = ", ".join(f"{n} {v:.2f}" for n, v in capacity_ratios.items())
        lines += ["", f"Capacity ratios (of capacities found within the search): {cells}."]
    lines += [
        "",
        "Capacity: the highest fixed arrival rate (oha, latency corrected for coordinated omission) the service keeps"
        " up with (≥ 95 % answered within the run) with p99 within the bound, found by bisection"
        f" ({config.capacity_steps} runs of {config.open_loop_seconds} s at most).",
    ]
    return lines


def _rounds(report: Report) -> list[str]:
    measured = {name: s.rounds for name, s in report.services.items() if s.rounds is not None}
    if not measured:
        return []
    rows = []
    for name, r in measured.items():
        figures = [interval_cell(f) if f is not None else "–" for f in (r.rps, r.p50_ms, r.p99_ms)]
        spread = f"± {100 * r.rps.half_width:.1f} %" if r.rps is not None else "–"
        efficiency = interval_cell(r.efficiency) if r.efficiency else "–"
        rows.append(
            [
                f"`{name}`",
                figures[0],
                spread,
                *figures[1:],
                efficiency,
                str(len(r.samples.rps)),
                r.failure or "",
            ]
        )
    lines = ["", "## Load rounds", ""]
    lines += table(["service", "req/s", "half-width", "p50 ms", "p99 ms", "efficiency", "rounds", "failure"], rows)
    lines += _rounds_thread_cpu(measured)
    if paired := report.ratio_intervals.rps:
        cells = [f"{name} {interval_cell(f)}" for name, f in paired.items() if f is not None]
        lines += ["", "Paired ratios of req/s: " + ", ".join(cells) + "."]
    config = report.config
    lines += [
        "",
        f"The services side by side, {config.rounds} rounds of ab -n {config.round_requests}"
        f" -c {config.concurrency}, one service loaded at a time, the order rotating each round. Figures:"
        " geometric mean [95 % interval: t on the logs of the rounds]; a ratio pairs the two services' runs of"
        " each round. The req/s ratios and their assertions are these. Efficiency here: each round's req/s ÷"
        " (in-process req/s × CPU limit), the in-process rate measured in the same container right after that round"
        " (without those, the one in-process run of the Performance table, which divides one ab run by it).",
    ]
    return lines


def _rounds_thread_cpu(measured: Mapping[str, RoundsFigures]) -> list[str]:
    """The rounds' mean CPU per request by thread role beside their in-process time: where efficiency goes."""
    cells = []
    for name, r in measured.items():
        cpu = r.thread_cpu_ms
        if cpu is None:
            continue
        limits = [rate for rate in r.in_process_rps if rate]
        text = f"`{name}` {cpu.server:.2f} / {cpu.worker:.2f} / {cpu.total:.2f}"
        if limits:
            in_process = sum(1000 / rate for rate in limits) / len(limits)
            text += f" (in-process {in_process:.2f}, ÷ total {in_process / cpu.total:.3f})"
        cells.append(text)
    if not cells:
        return []
    return [
        "",
        "CPU ms per request over the rounds, server / worker / total thread time (metrics/thread_cpu, the mean of the"
        " rounds): " + ", ".join(cells) + ".",
    ]


def _sweep(report: Report) -> list[str]:
    swept = {name: s.sweep for name, s in report.services.items() if s.sweep is not None}
    if not swept:
        return []
    rows = []
    for name, sweep in swept.items():
        for p in sweep.points:
            latency = p.latency_ms
            errors = p.failure or (str(p.errors) if p.errors is not None else "–")
            rows.append(
                [
                    f"`{name}`",
                    str(p.concurrency),
                    cell(p.rps),
                    *(cell(getattr(latency, k) if latency else None, 0) for k in ("p50", "p90", "p99")),
                    errors,
                ]
            )
    knees = ", ".join(f"`{n}` c={cell(s.knee_concurrency)}" for n, s in swept.items())
    return [
        "",
        "## Concurrency sweep",
        "",
        *table(["service", "c", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors"], rows),
        "",
        f"Closed loop (ab), the services taking turns at each level. Knee (smallest c reaching 95 % of the best"
        f" req/s): {knees}.",
        "",
        f"![Latency against throughput]({SWEEP_PLOT_NAME})",
    ]


def _open_loop(report: Report) -> list[str]:
    runs = {name: s.open_loop for name, s in report.services.items() if s.open_loop is not None}
    if not runs:
        return []
    rows = []
    for name, points in runs.items():
        for p in points:
            latency = p.latency_ms
            errors = p.errors + (p.non_2xx or 0) if p.errors is not None else None
            rows.append(
                [
                    f"`{name}`",
                    f"{p.fraction_of_best:g}" if p.fraction_of_best is not None else "–",
                    cell(p.rate),
                    cell(p.achieved_rps),
                    *(cell(getattr(latency, k) if latency else None, 0) for k in ("p50", "p90", "p99", "max")),
                    p.failure or cell(errors),
                ]
            )
    header = ["service", "× best", "rate", "achieved", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"]
    return [
        "",
        "## Open loop",
        "",
        *table(header, rows),
        "",
        "oha at fixed arrival rates (fractions of each service's best sweep req/s), latencies corrected for"
        " coordinated omission: each counts from the request's scheduled send time.",
    ]


def _sizes(report: Report) -> list[str]:
    sized = {name: s.sizes for name, s in report.services.items() if s.sizes is not None}
    if not sized:
        return []
    rows = []
    for name, points in sized.items():
        for p in points:
            means = {stage: figure.mean for stage, figure in p.stages_ms.items()}
            rows.append(
                [
                    f"`{name}`",
                    f"{p.width}×{p.height}",
                    cell(p.megapixels, 2),
                    cell(p.body_bytes / 1e3, 0),
                    cell(p.rps),
                    *(cell(means.get(k), 2) for k in ("decode", "preprocess", "inference", "model")),
                    p.failure or "",
                ]
            )
    header = ["service", "size", "MP", "body KB", "req/s", "decode ms", "preprocess ms", "inference ms", "model ms"]
    return [
        "",
        "## Payload sizes",
        "",
        *table([*header, "failure"], rows),
        "",
        "The same closed-loop load (ab) at photo-like JPEGs of each size; stages: the services' own means over the"
        " run.",
        "",
        f"![Throughput against payload size]({SIZES_PLOT_NAME})",
    ]


def side_by_side_sections(report: Report) -> list[str]:
    return [*_rounds(report), *_sweep(report), *_open_loop(report), *_sizes(report)]
