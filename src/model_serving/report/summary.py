"""``summary.md``: upstream's performance and deployment tables, extended by percentiles, efficiency and ratios."""

from __future__ import annotations

from collections.abc import Mapping

from model_serving.report.breakdown import OTHER, PARTS, breakdowns
from model_serving.report.markdown import PLOT_NAME, cell, interval_cell, table
from model_serving.report.sections import ModelInfo, Report, RunSettings, ServiceSection
from model_serving.report.side_by_side import headline, side_by_side_sections
from model_serving.report.unavailable import unavailable_lines


def _model_line(model: ModelInfo) -> list[str]:
    if not model.model_id:
        return []
    source = model.source or {}
    if not source:
        return [f"Model `{model.model_id[:12]}`."]
    if source.get("kind") == "default":
        origin = f"the default model (seed {source.get('seed')})"
    else:
        origin = f"state dict `{source.get('uri', '?')}`"
        if source.get("generation"):
            origin += f" (generation {source['generation']})"
    if source.get("onnx"):
        origin += f", ONNX services on `{source['onnx'].get('uri')}`"
    return [f"Model `{model.model_id[:12]}`: {origin}."]


def _where_the_time_goes(services: Mapping[str, ServiceSection]) -> list[str]:
    rows = []
    for name, section in services.items():
        for row in breakdowns(section):
            parts = dict(row.parts_ms)
            if row.whole_graph_ms is not None:
                parts["inference"] = row.whole_graph_ms
            rows.append(
                [
                    f"`{name}`",
                    row.label,
                    *(cell(parts.get(stage), 2) for stage in PARTS),
                    cell(row.other_ms, 2),
                    cell(row.total_ms, 2),
                    cell(row.latency_ms, 2),
                ]
            )
    if not rows:
        return []
    coverage = [
        f"`{name}` {s.at_c1.coverage:.3f}"
        for name, s in services.items()
        if s.at_c1 is not None and s.at_c1.coverage is not None
    ]
    lines = ["", "## Where the time goes", ""]
    lines += table(["service", "measured", *PARTS, OTHER, "total (server)", "latency"], rows)
    lines += [
        "",
        "Mean milliseconds per request. Served rows: the stages from the service's own `/metrics` over the ab run "
        f"at that concurrency; latency = ab's mean over the requests (at c=1 its time per request, to the µs; above, "
        "the mean of its connection times, free of the run's ramp-up and drain); "
        f"{OTHER} = latency − the stages (reading the "
        "body, routing, writing the answer, the loopback); total (server) = the service's own request received → "
        "response written, so latency − total passes before the service sees the request. In-process: the same "
        "request path in the service's container on one thread, no HTTP; for the ONNX services preprocess and "
        "model are the served graph's two halves run apart and inference is the whole graph as served (one call), "
        "so the row adds up through inference.",
    ]
    if coverage:
        lines += ["", "Stages ÷ latency at c=1 (coverage): " + ", ".join(coverage) + "."]
    lines += ["", f"![Where the time goes]({PLOT_NAME})"]
    return lines


def _cpu_by_thread(services: Mapping[str, ServiceSection]) -> list[str]:
    rows = []
    for name, section in services.items():
        measured = section.thread_cpu
        if measured is None:
            continue
        ms = measured.ms_per_request
        in_process = section.in_process_rps
        path_ms = 1000 / in_process if in_process else None
        busy = [t for t in measured.threads if t.ms_per_request >= 0.005][:3]  # idle pools left out
        busiest = ", ".join(f"`{t.name}` {t.ms_per_request:.2f}" for t in busy)
        rows.append(
            [
                f"`{name}`",
                *(cell(value, 2) for value in (ms.server, ms.worker, ms.other, ms.total)),
                cell(path_ms, 2),
                cell(ms.worker / path_ms if path_ms else None, 3),
                cell(path_ms / ms.total if path_ms and ms.total else None, 3),
                busiest,
            ]
        )
    if not rows:
        return []
    header = ["service", "server", "worker", "other", "total", "in-process", "worker ÷ in-process"]
    lines = ["", "### CPU per request, by thread", ""]
    lines += table([*header, "in-process ÷ total", "busiest threads"], rows)
    lines += [
        "",
        "CPU milliseconds per request over the load run: each thread's time on a CPU "
        "(`/proc/<pid>/task/<tid>/schedstat` on the engine's host) after the load run minus before, ÷ its requests. "
        "server: what speaks HTTP (the Python event loop, actix-web's threads); "
        "worker: the thread that decodes and infers (`predict`, `inference-0`); other: the rest. in-process: the "
        "bench's decode-and-infer time per request (1 ÷ in-process req/s), the same path on one thread without HTTP. "
        "in-process ÷ total is about the efficiency: the server's CPU, and the worker's beyond the bench's, are what "
        "serving adds.",
    ]
    return lines


def _against_usual(services: Mapping[str, ServiceSection]) -> list[str]:
    compared = {name: s.against_usual for name, s in services.items() if s.against_usual is not None}
    if not compared:
        return []
    rows = []
    for name, c in compared.items():
        rounds = " / ".join(f"{r.ours:.1f} vs {r.usual:.1f}, {r.usual_tuned:.1f}" for r in c.rounds)
        failed = c.failure or "–"
        rows.append(
            [
                f"`{name}`",
                f"`{c.usual}`: {c.description}",
                rounds or "–",
                interval_cell(c.ratio) if c.ratio is not None else failed,
                interval_cell(c.ratio_tuned) if c.ratio_tuned is not None else failed,
                cell(c.max_abs_dp, 4),
            ]
        )
    lines = ["", "## Against the usual implementation", ""]
    header = [
        "service",
        "the usual implementation",
        "req/s per round (ours vs usual as written, with threads = CPU limit)",
        "ours ÷ usual",
        "ours ÷ usual, threads = CPU limit",
        "max |Δp|",
    ]
    lines += table(header, rows)
    lines += [
        "",
        "Same CPU limit, payload and concurrency; the three containers stay up, ab loads one at a time, the order"
        " rotating each round; ratio = geometric mean"
        " of the rounds' ours ÷ usual, [95 % interval: t on the log ratios of the paired rounds]. The usual"
        " implementation runs as written (its libraries' default threads) and with THREADS = the CPU limit."
        " max |Δp|: the two answers' probabilities on the payload (the usual ones do not keep the preprocessing"
        " contract).",
    ]
    return lines


def _run_line(config: RunSettings) -> str:
    if targets := config.targets:
        where = ", ".join(f"`{name}` {url}" for name, url in targets.items())
        return (
            f"Profile `{config.profile}`: ab -n {config.requests} -c {config.concurrency} against services"
            f" already running (--target: {where}; nothing built or started); payload `{config.payload}`."
        )
    return (
        f"Profile `{config.profile}`: ab -n {config.requests} -c {config.concurrency}, "
        f"{config.cpus} CPU per service, {config.startup_runs} start-ups; payload `{config.payload}`."
    )


def _performance(services: Mapping[str, ServiceSection]) -> list[str]:
    rows = []
    for name, s in services.items():
        load = s.load
        latency = load.latency_ms if load else None
        memory = s.memory_mb
        rows.append(
            [
                f"`{name}`",
                cell(load.rps if load else None),
                cell(load.time_per_request_ms if load else None),
                *(cell(getattr(latency, k) if latency else None, 0) for k in ("p50", "p90", "p95", "p99", "max")),
                cell(memory.mean if memory else None),
                cell(memory.peak if memory else None),
                cell(s.cpu_percent.mean if s.cpu_percent else None, 0),
                cell(s.in_process_rps),
                cell(s.efficiency, 2),
                f"{cell(s.workers)}×{cell(s.threads)}",
            ]
        )
    lines = ["", "## Performance", ""]
    lines += table(
        [
            "service",
            "req/s",
            "mean ms",
            "p50",
            "p90",
            "p95",
            "p99",
            "max",
            "mem mean MB",
            "mem peak MB",
            "CPU %",
            "in-process req/s",
            "efficiency",
            "workers×threads",
        ],
        rows,
    )
    failures = [f"- `{n}`: {s.load.failure}" for n, s in services.items() if s.load and s.load.failure]
    if failures:
        lines += ["", "**Failed measurements** (not slow results):", *failures]
    return lines


def _deployment(services: Mapping[str, ServiceSection]) -> list[str]:
    rows = [
        [
            f"`{name}`",
            cell(s.image.size_mb if s.image else None),
            *(cell(getattr(s.startup_s, k) if s.startup_s else None, 3) for k in ("median", "min", "max")),
            str(len(s.startup_s.samples) if s.startup_s else 0),
        ]
        for name, s in services.items()
    ]
    lines = ["", "## Deployment", ""]
    lines += table(["service", "image MB", "start-up median s", "min s", "max s", "runs"], rows)
    grown = {n: s.memory_over_requests for n, s in services.items() if s.memory_over_requests is not None}
    if grown:
        lines += ["", "## Memory over requests", ""]
        rows = [
            [
                f"`{name}`",
                " → ".join(f"{mb:.1f}" for _, mb in m.points),
                " / ".join(str(served) for served, _ in m.points),
                cell(m.growth, 3) if m.growth is not None else (m.failure or "–"),
            ]
            for name, m in grown.items()
        ]
        lines += table(["service", "MB at rest", "after requests", "growth (last ÷ after 1st batch)"], rows)
    return lines


def _ratios_and_assertions(report: Report) -> list[str]:
    lines = ["", "## Ratios", ""]
    by_metric = report.ratios.by_metric()
    metrics = ("rps", "image_size_mb", "startup_s", "memory_mb")
    names = sorted({ratio for metric in metrics for ratio in by_metric[metric]})
    rows = [[name, *(cell(by_metric[m].get(name), 3) for m in metrics)] for name in names]
    lines += table(["ratio", "req/s", "image size", "start-up (median)", "memory (peak)"], rows)
    if report.assertions:
        lines += ["", "## Assertions", ""]
        verdict = {True: "pass", False: "**FAIL**", None: "not measured"}
        rows = [
            [
                a.name,
                cell(a.measured, 3),
                "[{:.3f}, {:.3f}]".format(*a.interval) if a.interval is not None else "–",
                cell(a.threshold, 3),
                verdict[a.passed],
                a.not_measured or "",
            ]
            for a in report.assertions
        ]
        lines += table(["threshold", "measured", "95 % interval", "limit", "result", "why not measured"], rows)
        bound = report.config.ratio_bound
        lines += [
            "",
            f"Checked against: the {'interval end on the limit side' if bound == 'interval' else 'measured centre'}"
            " (--ratio-bound).",
        ]
    return lines


def render_summary(report: Report) -> str:
    services, env = report.services, report.environment
    lines = [
        f"# model-serving benchmark {report.run_id}",
        "",
        _run_line(report.config),
        f"Host: {env.host_cpu}, {env.host_cores} cores; "
        + (f"Docker {env.docker_engine}" if env.docker_engine else "no Docker engine used")
        + f"; {env.ab}.",
        *_model_line(report.model),
        *headline(report),
        *_performance(services),
        *unavailable_lines(services),
        *side_by_side_sections(report),
        *_where_the_time_goes(services),
        *_cpu_by_thread(services),
        *_against_usual(services),
        *_deployment(services),
        *_ratios_and_assertions(report),
        "",
        "Efficiency = req/s ÷ (in-process req/s on one thread × CPU limit).",
        "",
    ]
    return "\n".join(lines)
