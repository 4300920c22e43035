"""The summary's sections for what was measured with the services side by side: the headline (capacity under the
latency bound beside saturated req/s), the load rounds, the concurrency sweep, the open-loop runs and the
payload sizes. Each reads only ``report.json``'s figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from model_serving.report.markdown import SIZES_PLOT_NAME, SWEEP_PLOT_NAME, cell, interval_cell, table


def _capacity_cell(capacity: Mapping[str, Any] | None) -> str:
    if capacity is None:
        return "–"
    if capacity["rate"] is None:
        return f"none (not even {capacity['bracket'][1]:g} req/s)"
    if capacity["at_least"]:
        return f"≥ {capacity['rate']:.1f} (the search's top)"
    low, high = capacity["bracket"]
    return f"{capacity['rate']:.1f} (between {low:g} and {high:g})"


def headline(report: Mapping[str, Any]) -> list[str]:
    """What a user chooses by: the highest arrival rate each service carries within the bound, and its saturated
    req/s over the rounds."""
    services = report["services"]
    if not any("capacity" in s or "rounds" in s for s in services.values()):
        return []
    slo = report["config"].get("slo_ms")
    rows = [
        [
            f"`{name}`",
            _capacity_cell(s.get("capacity")),
            interval_cell(s["rounds"]["rps"]) if s.get("rounds", {}).get("rps") else "–",
            cell(s.get("sweep", {}).get("knee_concurrency")),
        ]
        for name, s in services.items()
    ]
    capacity_ratios = report["ratios"].get("capacity_rps", {})
    lines = [
        "",
        "## Headline",
        "",
        *table(
            [
                "service",
                f"capacity: req/s carried with p99 ≤ {cell(slo, 0)} ms (open loop)",
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
        f" ({report['config'].get('capacity_steps')} runs of {report['config'].get('open_loop_seconds')} s at most).",
    ]
    return lines


def _rounds(report: Mapping[str, Any]) -> list[str]:
    measured = {name: s["rounds"] for name, s in report["services"].items() if "rounds" in s}
    if not measured:
        return []
    rows = []
    for name, r in measured.items():
        figures = [interval_cell(r[k]) if r[k] is not None else "–" for k in ("rps", "p50_ms", "p99_ms")]
        spread = f"± {100 * r['rps']['half_width']:.1f} %" if r["rps"] is not None else "–"
        efficiency = interval_cell(r["efficiency"]) if r.get("efficiency") else "–"
        rows.append(
            [
                f"`{name}`",
                figures[0],
                spread,
                *figures[1:],
                efficiency,
                str(len(r["samples"]["rps"])),
                r["failure"] or "",
            ]
        )
    lines = ["", "## Load rounds", ""]
    lines += table(["service", "req/s", "half-width", "p50 ms", "p99 ms", "efficiency", "rounds", "failure"], rows)
    lines += _rounds_thread_cpu(measured)
    paired = report.get("ratio_intervals", {}).get("rps", {})
    if paired:
        cells = [f"{name} {interval_cell(f)}" for name, f in paired.items() if f is not None]
        lines += ["", "Paired ratios of req/s: " + ", ".join(cells) + "."]
    config = report["config"]
    lines += [
        "",
        f"The services side by side, {config.get('rounds')} rounds of ab -n {config.get('round_requests')}"
        f" -c {config.get('concurrency')}, one service loaded at a time, the order rotating each round. Figures:"
        " geometric mean [95 % interval: t on the logs of the rounds]; a ratio pairs the two services' runs of"
        " each round. The req/s ratios and their assertions are these. Efficiency here: each round's req/s ÷"
        " (in-process req/s × CPU limit), the in-process rate measured in the same container right after that round"
        " (without those, the one in-process run of the Performance table, which divides one ab run by it).",
    ]
    return lines


def _rounds_thread_cpu(measured: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The rounds' mean CPU per request by thread role beside their in-process time: where efficiency goes."""
    cells = []
    for name, r in measured.items():
        cpu = r.get("thread_cpu_ms")
        if not cpu:
            continue
        limits = [rate for rate in r.get("in_process_rps") or [] if rate]
        text = f"`{name}` {cpu['server']:.2f} / {cpu['worker']:.2f} / {cpu['total']:.2f}"
        if limits:
            in_process = sum(1000 / rate for rate in limits) / len(limits)
            text += f" (in-process {in_process:.2f}, ÷ total {in_process / cpu['total']:.3f})"
        cells.append(text)
    if not cells:
        return []
    return [
        "",
        "CPU ms per request over the rounds, server / worker / total thread time (metrics/thread_cpu, the mean of the"
        " rounds): " + ", ".join(cells) + ".",
    ]


def _sweep(report: Mapping[str, Any]) -> list[str]:
    swept = {name: s["sweep"] for name, s in report["services"].items() if "sweep" in s}
    if not swept:
        return []
    rows = []
    for name, sweep in swept.items():
        for p in sweep["points"]:
            latency = p["latency_ms"] or {}
            errors = p["failure"] or (str(p["errors"]) if p["errors"] is not None else "–")
            rows.append(
                [
                    f"`{name}`",
                    str(p["concurrency"]),
                    cell(p["rps"]),
                    *(cell(latency.get(k), 0) for k in ("p50", "p90", "p99")),
                    errors,
                ]
            )
    knees = ", ".join(f"`{n}` c={cell(s['knee_concurrency'])}" for n, s in swept.items())
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


def _open_loop(report: Mapping[str, Any]) -> list[str]:
    runs = {name: s["open_loop"] for name, s in report["services"].items() if "open_loop" in s}
    if not runs:
        return []
    rows = []
    for name, points in runs.items():
        for p in points:
            latency = p["latency_ms"] or {}
            rows.append(
                [
                    f"`{name}`",
                    f"{p['fraction_of_best']:g}",
                    cell(p["rate"]),
                    cell(p["achieved_rps"]),
                    *(cell(latency.get(k), 0) for k in ("p50", "p90", "p99", "max")),
                    p["failure"] or str(p["errors"] + p["non_2xx"] if p["errors"] is not None else "–"),
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


def _sizes(report: Mapping[str, Any]) -> list[str]:
    sized = {name: s["sizes"] for name, s in report["services"].items() if "sizes" in s}
    if not sized:
        return []
    rows = []
    for name, points in sized.items():
        for p in points:
            stages = p["stages_ms"]
            rows.append(
                [
                    f"`{name}`",
                    f"{p['width']}×{p['height']}",
                    cell(p["megapixels"], 2),
                    cell(p["body_bytes"] / 1e3, 0),
                    cell(p["rps"]),
                    *(cell(stages.get(k, {}).get("mean"), 2) for k in ("decode", "preprocess", "inference", "model")),
                    p["failure"] or "",
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


def side_by_side_sections(report: Mapping[str, Any]) -> list[str]:
    return [*_rounds(report), *_sweep(report), *_open_loop(report), *_sizes(report)]
