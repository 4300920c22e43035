"""The report document (``report.json``): figures per service, ratios and assertions, built from measurements.

Pure: takes what was measured, returns plain data. Where each figure comes from:
``load`` ← ab's output (load/ab_parser), ``memory_mb``/``cpu_percent`` ← the engine's stats (metrics/docker_stats)
sampled during the ab run, ``startup_s`` ← start call to first 200 (docker/containers), ``image.size_mb`` ←
the engine's image size, ``in_process_rps`` ← the service's own decode-and-predict loop run inside its container
(perf/measure), ``efficiency`` = rps / (in_process_rps × CPU limit), ``memory_over_requests`` ← memory at rest
after each batch of a long run (perf/measure), its ``growth`` = last / after the first batch.
``stages_ms`` ← the service's own ``/metrics`` histograms, scraped before and after the load run
(metrics/prometheus); ``at_c1`` ← the same for a short ab run at c=1, where ``coverage`` = the stages' summed means
÷ ab's mean time per request (what the stages explain of the service time); ``in_process_stages_ms`` ← the
in-process bench's own clocks (serving_common.bench, the binary's --bench); ``thread_cpu`` ← each of the service's
threads' time on a CPU, read from the engine host's /proc before and after the load run, ÷ its requests
(load/thread_sampler, metrics/thread_cpu).

Side by side (perf/rounds.side_by_side: the services up together, loaded one at a time): ``rounds`` ← ab per
round, geometric mean and 95 % t interval on logs (stats.log_interval), its ``efficiency`` ← each round's req/s ÷
(the in-process rate measured in its container right after it × CPU limit), paired (stats.ratio_interval; else the
rounds' req/s ÷ (in_process_rps × CPU limit)), its ``thread_cpu_ms`` ← the rounds' mean CPU per request by role
(as ``thread_cpu``, read around each round), ``ratio_intervals.rps`` ← the paired
rounds (stats.ratio_interval), which also give ``ratios.rps``; ``sweep`` ← ab per concurrency (perf/sweep), its
knee from model_serving.curves; ``open_loop`` ← oha at fractions of the best sweep req/s (perf/open_loop,
load/oha_parser); ``capacity`` ← the bisection of curves.search_capacity over oha runs; ``sizes`` ← ab and
``/metrics`` per payload size (perf/sizes). The schema of the whole document: report.schema.json.

A run against services already running (``--target``, perf/target) has no ``image``, ``startup_s``, memory, CPU,
in-process or usual figures: each service's ``unavailable`` names those fields with the reason, and an assertion
on a ratio that could not be measured says why in ``not_measured`` (report/unavailable).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from model_serving.curves import Capacity, knee
from model_serving.docker.build import BuiltImage
from model_serving.load.ab_parser import AbReport
from model_serving.load.oha_parser import Latency
from model_serving.perf.measure import LoadMeasurement, MemoryOverRequests, StagedRun
from model_serving.perf.open_loop import OpenLoopPoint
from model_serving.perf.rounds import Rounds
from model_serving.perf.sizes import SizePoint
from model_serving.perf.sweep import SweepPoint, best_rps, completed
from model_serving.report.breakdown import PARTS
from model_serving.report.ratios import evaluate, ratios
from model_serving.report.unavailable import not_measured_reason
from model_serving.services import RATIO_PAIRS
from model_serving.stats import Interval, log_interval, ratio_interval, summary
from model_serving.usual.compare import UsualComparison

SCHEMA_VERSION = 2


@dataclass
class ServiceResults:
    """What the perf tests gathered for one service; ``unavailable``: the section's fields that cannot be measured
    in this run, with the reason (no image when the suite did not build the service: ``--target``)."""

    image: BuiltImage | None
    startup_s: list[float] = field(default_factory=list)
    load: LoadMeasurement | None = None
    memory_over_requests: MemoryOverRequests | None = None
    against_usual: UsualComparison | None = None
    unavailable: dict[str, str] = field(default_factory=dict)


@dataclass
class SideBySideResults:
    """What the perf tests measured with the services up together (perf/rounds.side_by_side)."""

    rounds: Rounds | None = None
    sweep: dict[str, list[SweepPoint]] | None = None
    open_loop: dict[str, list[OpenLoopPoint]] | None = None
    capacity: dict[str, Capacity] = field(default_factory=dict)
    sizes: dict[str, list[SizePoint]] | None = None


def load_figures(report: AbReport) -> dict[str, Any]:
    """A load run's section of report.json (``services.<name>.load``), from ab's or Locust's figures."""
    return {
        "requests": report.complete,
        "concurrency": report.concurrency,
        "failed": report.failed,
        "non_2xx": report.non_2xx,
        "rps": report.rps,
        "time_taken_s": report.time_taken_s,
        "time_per_request_ms": report.time_per_request_ms,
        "time_per_request_all_ms": report.time_per_request_all_ms,
        # The mean of the requests' own latencies (ab's "Connection Times" total). ab's "time per request" is
        # concurrency × run time ÷ requests: it also counts the run's ramp-up and drain, when fewer than c are out.
        "latency_mean_ms": total.mean if (total := report.connection_times.get("total")) else None,
        "transfer_rate_mb_s": round(report.transfer_rate_mb_s, 4),
        "latency_ms": dict(report.latency_ms),
    }


def memory_growth(points: list[tuple[int, float]]) -> float | None:
    """Memory after the last batch over memory after the first: the first allocates the working set."""
    if len(points) < 3 or points[1][1] <= 0:
        return None
    return round(points[-1][1] / points[1][1], 4)


def _memory_over_requests_section(measured: MemoryOverRequests) -> dict[str, Any]:
    return {
        "points": [[served, mb] for served, mb in measured.points],
        "growth": memory_growth(measured.points) if measured.failure is None else None,
        "failure": measured.failure,
    }


def stage_sum_ms(stages_ms: Mapping[str, Mapping[str, Any]]) -> float:
    """The summed means of the stages a request goes through one after the other (``total`` spans them all)."""
    return round(sum(float(stages_ms[stage]["mean"]) for stage in PARTS if stage in stages_ms), 4)


def _at_c1_section(run: StagedRun) -> dict[str, Any]:
    report = run.outcome.report
    section: dict[str, Any] = {
        "requests": report.complete if report else None,
        "mean_ms": report.time_per_request_ms if report else None,
        "latency_ms": dict(report.latency_ms) if report else {},
        "stages_ms": run.stages_ms,
        "stage_sum_ms": stage_sum_ms(run.stages_ms) if run.stages_ms else None,
        "failure": run.outcome.failure,
    }
    mean, summed = section["mean_ms"], section["stage_sum_ms"]
    section["coverage"] = round(summed / mean, 4) if run.outcome.ok and mean and summed else None
    return section


def _interval_figure(interval: Interval | None) -> dict[str, float | int] | None:
    """centre: the geometric mean the 95 % interval [low, high] is around; median: the rounds' own."""
    if interval is None:
        return None
    return {
        "centre": interval.centre,
        "low": interval.low,
        "high": interval.high,
        "median": interval.median,
        "rounds": interval.samples,
        "half_width": round(interval.half_width, 4),
    }


#: What a load round records per service: ab's req/s and two of its latency percentiles.
ROUND_FIGURES = {
    "rps": lambda r: r.rps,
    "p50_ms": lambda r: r.latency_ms["p50"],
    "p99_ms": lambda r: r.latency_ms["p99"],
}


def _scaled(figure: dict[str, Any] | None, factor: float) -> dict[str, Any] | None:
    """An interval figure with its values times ``factor`` (its rounds and relative half-width unchanged)."""
    if figure is None:
        return None
    return {**figure, **{key: round(figure[key] * factor, 3) for key in ("centre", "low", "high", "median")}}


def _rounds_efficiency(
    rounds: Rounds, name: str, rps: dict[str, Any] | None, in_process_rps: float | None, cpus: float
) -> dict[str, Any] | None:
    """Each round's req/s ÷ (its own in-process rate × CPU limit), paired; without those, the rounds' req/s ÷ the
    load test's one in-process rate."""
    if pairs := rounds.with_limits(name):
        return _interval_figure(ratio_interval([(served, limit * cpus) for served, limit in pairs]))
    return _scaled(rps, 1 / (in_process_rps * cpus)) if in_process_rps else None


def _rounds_section(reports: list[AbReport], failure: str | None) -> dict[str, Any]:
    samples = {name: [figure(report) for report in reports] for name, figure in ROUND_FIGURES.items()}
    section: dict[str, Any] = {name: _interval_figure(log_interval(v)) if v else None for name, v in samples.items()}
    return {**section, "samples": samples, "failure": failure}


def _sweep_section(points: list[SweepPoint]) -> dict[str, Any]:
    return {
        "points": [
            {
                "concurrency": p.concurrency,
                "requests": p.requests,
                "rps": p.rps,
                "latency_ms": p.latency_ms,
                "errors": p.errors,
                "failure": p.failure,
            }
            for p in points
        ],
        "best_rps": best_rps(points),
        "knee_concurrency": knee(completed(points)),
    }


def _open_loop_latency(latency: Latency) -> dict[str, float]:
    """Named like ab's percentiles elsewhere in the report (p50, p90, p99, max, mean)."""
    return {key.removesuffix("_ms"): round(value, 2) for key, value in asdict(latency).items()}


def _open_loop_point(point: OpenLoopPoint) -> dict[str, Any]:
    report = point.report
    return {
        "fraction_of_best": point.fraction,
        "rate": point.rate,
        "achieved_rps": round(report.achieved_rate_per_s, 2) if report else None,
        "latency_corrected": report.latency_corrected if report else None,
        "latency_ms": _open_loop_latency(report.latency) if report and report.latency else None,
        "requests": report.requests if report else None,
        "errors": report.errors if report else None,
        "non_2xx": report.non_2xx if report else None,
        "failure": point.failure,
    }


def _capacity_section(capacity: Capacity, slo_ms: float) -> dict[str, Any]:
    return {
        "slo_ms": slo_ms,
        "rate": capacity.rate,
        "bracket": list(capacity.bracket),
        "at_least": capacity.at_least,
        "probes": [
            {**asdict(probe), "p99_ms": round(probe.p99_ms, 2) if probe.p99_ms is not None else None}
            for probe in capacity.probes
        ],
    }


def _size_point(point: SizePoint) -> dict[str, Any]:
    return {
        "width": point.width,
        "height": point.height,
        "megapixels": round(point.megapixels, 3),
        "body_bytes": point.body_bytes,
        "rps": point.rps,
        "stages_ms": point.stages_ms,
        "failure": point.failure,
    }


def _side_by_side_sections(together: SideBySideResults, services: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Each service's figures from the side-by-side measurements, into its section."""
    for name, section in services.items():
        if together.rounds is not None and name in together.rounds.reports:
            section["rounds"] = _rounds_section(together.rounds.reports[name], together.rounds.failures.get(name))
            section["rounds"]["in_process_rps"] = together.rounds.limits.get(name, [])
            if (thread_cpu := together.rounds.mean_thread_cpu(name)) is not None:
                section["rounds"]["thread_cpu_ms"] = thread_cpu
            section["rounds"]["efficiency"] = _rounds_efficiency(
                together.rounds, name, section["rounds"]["rps"], section.get("in_process_rps"), float(config["cpus"])
            )
        if together.sweep and name in together.sweep:
            section["sweep"] = _sweep_section(together.sweep[name])
        if together.open_loop and name in together.open_loop:
            section["open_loop"] = [_open_loop_point(p) for p in together.open_loop[name]]
        if name in together.capacity:
            section["capacity"] = _capacity_section(together.capacity[name], float(config["slo_ms"]))
        if together.sizes and name in together.sizes:
            section["sizes"] = [_size_point(p) for p in together.sizes[name]]


def rounds_ratio_intervals(rounds: Rounds) -> dict[str, dict[str, float | int] | None]:
    """Each ratio of RATIO_PAIRS over the rounds both services completed (paired: one moment each)."""
    return {
        name: _interval_figure(ratio_interval(pairs)) if (pairs := rounds.paired(top, bottom)) else None
        for name, (top, bottom) in RATIO_PAIRS.items()
        if top in rounds.reports and bottom in rounds.reports
    }


def _against_usual_section(compared: UsualComparison) -> dict[str, Any]:
    return {
        "usual": compared.usual,
        "description": compared.description,
        "image": {"tag": compared.image.tag, "size_mb": compared.image.size_mb},
        "rounds": compared.rounds,
        "ratio": _interval_figure(compared.ratio("usual")),
        "ratio_tuned": _interval_figure(compared.ratio("usual_tuned")),
        "max_abs_dp": compared.max_abs_dp,
        "same_prediction": compared.same_prediction,
        "failure": compared.failure,
    }


def service_section(results: ServiceResults, cpus: float) -> dict[str, Any]:
    section: dict[str, Any] = {}
    if results.image is not None:
        section["image"] = {"tag": results.image.tag, "id": results.image.image_id, "size_mb": results.image.size_mb}
    if results.unavailable:
        section["unavailable"] = dict(results.unavailable)
    if results.startup_s:
        section["startup_s"] = summary(results.startup_s)
    if results.memory_over_requests is not None:
        section["memory_over_requests"] = _memory_over_requests_section(results.memory_over_requests)
    if results.against_usual is not None:
        section["against_usual"] = _against_usual_section(results.against_usual)
    measurement = results.load
    if measurement is None:
        return section
    section["model_id"] = measurement.health.get("model_id")  # what the service says it serves
    section["workers"] = measurement.health.get("workers")
    section["threads"] = measurement.health.get("threads")
    outcome = measurement.outcome
    section["load"] = load_figures(outcome.report) if outcome.report else {}
    section["load"]["failure"] = outcome.failure
    memory = [value for _, value in measurement.resources.memory_mb]
    cpu = [value for _, value in measurement.resources.cpu_percent]
    section["memory_mb"] = {
        "mean": round(statistics.fmean(memory), 1) if memory else None,
        "peak": round(max(memory), 1) if memory else None,
        "series": [[round(t, 2), round(v, 1)] for t, v in measurement.resources.memory_mb],
    }
    section["cpu_percent"] = {"mean": round(statistics.fmean(cpu), 1) if cpu else None}
    section["in_process_rps"] = round(measurement.in_process_rps, 2) if measurement.in_process_rps else None
    section["stages_ms"] = measurement.stages_ms
    section["metrics_responses"] = measurement.responses
    if measurement.at_c1 is not None:
        section["at_c1"] = _at_c1_section(measurement.at_c1)
    section["in_process_stages_ms"] = measurement.in_process_detail.get("stages_ms", {})
    if measurement.thread_cpu is not None:
        section["thread_cpu"] = measurement.thread_cpu.as_dict()
    elif measurement.thread_cpu_unavailable:
        section.setdefault("unavailable", {})["thread_cpu"] = measurement.thread_cpu_unavailable
    if outcome.ok and outcome.report and measurement.in_process_rps:
        section["efficiency"] = round(outcome.report.rps / (measurement.in_process_rps * cpus), 3)
    else:
        section["efficiency"] = None
    return section


def _figure(section: Mapping[str, Any], *path: str) -> float | None:
    value: Any = section
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, int | float) else None


def build_report(
    run_id: str,
    created_at: str,
    environment: Mapping[str, Any],
    config: Mapping[str, Any],
    results: Mapping[str, ServiceResults],
    thresholds: Mapping[str, float],
    model: Mapping[str, Any] | None = None,
    together: SideBySideResults | None = None,
) -> dict[str, Any]:
    cpus = float(config["cpus"])
    services = {name: service_section(r, cpus) for name, r in results.items()}
    together = together or SideBySideResults()
    _side_by_side_sections(together, services, config)
    intervals: dict[str, dict[str, Any]] = {}
    if together.rounds is not None:
        intervals["rps"] = rounds_ratio_intervals(together.rounds)
    metrics = {
        "rps": ("load", "rps"),
        "image_size_mb": ("image", "size_mb"),
        "startup_s": ("startup_s", "median"),
        "memory_mb": ("memory_mb", "peak"),
    }
    all_ratios = {
        metric: ratios({name: _figure(section, *path) for name, section in services.items()})
        for metric, path in metrics.items()
    }
    # Capacities found within the search (a capacity at the search's top is a lower bound: no ratio of it).
    all_ratios["capacity_rps"] = ratios(
        {
            name: None if capacity.at_least else capacity.rate
            for name, capacity in together.capacity.items()
            if name in services
        }
    )
    # Not a ratio between services but of one service with itself; thresholds name the service.
    all_ratios["memory_growth"] = {
        name: growth
        for name, section in services.items()
        if (growth := _figure(section, "memory_over_requests", "growth")) is not None
    }
    # How much of the service time at c=1 the stages explain; thresholds name the service.
    all_ratios["stage_coverage"] = {
        name: coverage
        for name, section in services.items()
        if (coverage := _figure(section, "at_c1", "coverage")) is not None
    }
    # In-process, one service's loop: preprocessing ÷ network (the eager model, or the graph's second half).
    all_ratios["preprocess_over_network"] = {
        name: round(pre / net, 4)
        for name, section in services.items()
        if (pre := _figure(section, "in_process_stages_ms", "preprocess", "mean"))
        and (net := _figure(section, "in_process_stages_ms", "model", "mean"))
    }
    # Requests per second of the service ÷ the usual implementation of its strategy (as written; with threads = the
    # CPU limit), paired rounds.
    for metric, key in (("over_usual", "ratio"), ("over_usual_tuned", "ratio_tuned")):
        intervals[metric] = {
            name: figure
            for name, section in services.items()
            if isinstance(figure := section.get("against_usual", {}).get(key), Mapping)
        }
    # A ratio measured over rounds is their centre (the single load run's ratio stays in the services' sections).
    for metric, by_name in intervals.items():
        all_ratios.setdefault(metric, {}).update(
            {name: figure["centre"] for name, figure in by_name.items() if figure is not None}
        )
    assertions = evaluate(all_ratios, thresholds, intervals, str(config.get("ratio_bound", "centre")))
    for assertion in assertions:
        if assertion["passed"] is None:
            assertion["not_measured"] = not_measured_reason(assertion["name"], services)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created_at": created_at,
        "environment": {**environment, "images": {n: s["image"] for n, s in services.items() if "image" in s}},
        "config": dict(config),
        "model": dict(model or {}),
        "services": services,
        "ratios": all_ratios,
        "ratio_intervals": intervals,
        "assertions": assertions,
    }
