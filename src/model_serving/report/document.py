"""The report document (``report.json``): figures per service, ratios and assertions, built from measurements.

Pure: takes what was measured, returns the typed report (report/sections.Report). Where each figure comes from:
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
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from model_serving.curves import Capacity, knee
from model_serving.docker.build import BuiltImage
from model_serving.load.ab_parser import AbReport
from model_serving.perf.measure import LoadMeasurement, MemoryOverRequests, StagedRun
from model_serving.perf.open_loop import OpenLoopPoint
from model_serving.perf.rounds import Rounds
from model_serving.perf.sizes import SizePoint
from model_serving.perf.sweep import SweepPoint, best_rps, completed
from model_serving.report.breakdown import PARTS
from model_serving.report.ratios import evaluate, ratios
from model_serving.report.sections import (
    SCHEMA_VERSION,
    AgainstUsualFigures,
    AtC1Figures,
    CapacityFigures,
    CapacityProbe,
    CpuFigures,
    Environment,
    ImageInfo,
    IntervalFigure,
    LoadFigures,
    MemoryFigures,
    MemoryOverRequestsFigures,
    ModelInfo,
    OpenLoopLatency,
    OpenLoopRun,
    RatioIntervals,
    Ratios,
    Report,
    RoundSamples,
    RoundsFigures,
    RoundsThreadCpu,
    RunSettings,
    ServiceSection,
    SizeRun,
    StageFigure,
    StartupFigures,
    SweepFigures,
    ThreadCpuFigures,
    UsualImage,
    UsualRound,
)
from model_serving.report.unavailable import not_measured_reason
from model_serving.services import RATIO_PAIRS
from model_serving.stats import log_interval, ratio_interval, summary
from model_serving.usual.compare import UsualComparison

__all__ = ["SCHEMA_VERSION", "ServiceResults", "SideBySideResults", "build_report", "load_figures"]


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


def load_section(report: AbReport | None, failure: str | None) -> LoadFigures:
    """A load run's section (``services.<name>.load``), from ab's or Locust's figures; only ``failure`` without."""
    if report is None:
        return LoadFigures(failure=failure)
    # The mean of the requests' own latencies (ab's "Connection Times" total). ab's "time per request" is
    # concurrency × run time ÷ requests: it also counts the run's ramp-up and drain, when fewer than c are out.
    total = report.connection_times.get("total")
    return LoadFigures.model_validate(
        {
            "requests": report.complete,
            "concurrency": report.concurrency,
            "failed": report.failed,
            "non_2xx": report.non_2xx,
            "rps": report.rps,
            "time_taken_s": report.time_taken_s,
            "time_per_request_ms": report.time_per_request_ms,
            "time_per_request_all_ms": report.time_per_request_all_ms,
            "latency_mean_ms": total.mean if total else None,
            "transfer_rate_mb_s": round(report.transfer_rate_mb_s, 4),
            "latency_ms": dict(report.latency_ms),
            "failure": failure,
        }
    )


def load_figures(report: AbReport) -> dict[str, Any]:
    """A finished load run's figures as report.json writes them, without ``failure`` (the CLI's ``load``)."""
    figures = load_section(report, None).to_json()
    del figures["failure"]
    return figures


def memory_growth(points: list[tuple[int, float]]) -> float | None:
    """Memory after the last batch over memory after the first: the first allocates the working set."""
    if len(points) < 3 or points[1][1] <= 0:
        return None
    return round(points[-1][1] / points[1][1], 4)


def _memory_over_requests_section(measured: MemoryOverRequests) -> MemoryOverRequestsFigures:
    return MemoryOverRequestsFigures(
        points=list(measured.points),
        growth=memory_growth(measured.points) if measured.failure is None else None,
        failure=measured.failure,
    )


def stage_sum_ms(stages_ms: Mapping[str, StageFigure]) -> float:
    """The summed means of the stages a request goes through one after the other (``total`` spans them all)."""
    return round(sum(stages_ms[stage].mean for stage in PARTS if stage in stages_ms), 4)


def _stages(stages_ms: Mapping[str, Mapping[str, Any]]) -> dict[str, StageFigure]:
    return {stage: StageFigure.model_validate(figure) for stage, figure in stages_ms.items()}


def _at_c1_section(run: StagedRun) -> AtC1Figures:
    report = run.outcome.report
    stages = _stages(run.stages_ms)
    mean = report.time_per_request_ms if report else None
    summed = stage_sum_ms(stages) if stages else None
    return AtC1Figures.model_validate(
        {
            "requests": report.complete if report else None,
            "mean_ms": mean,
            "latency_ms": dict(report.latency_ms) if report else {},
            "stages_ms": stages,
            "stage_sum_ms": summed,
            "failure": run.outcome.failure,
            "coverage": round(summed / mean, 4) if run.outcome.ok and mean and summed else None,
        }
    )


#: What a load round records per service: ab's req/s and two of its latency percentiles.
ROUND_FIGURES: dict[str, Callable[[AbReport], float]] = {
    "rps": lambda r: r.rps,
    "p50_ms": lambda r: r.latency_ms["p50"],
    "p99_ms": lambda r: r.latency_ms["p99"],
}


def _rounds_efficiency(
    rounds: Rounds, name: str, rps: IntervalFigure | None, in_process_rps: float | None, cpus: float
) -> IntervalFigure | None:
    """Each round's req/s ÷ (its own in-process rate × CPU limit), paired; without those, the rounds' req/s ÷ the
    load test's one in-process rate."""
    if pairs := rounds.with_limits(name):
        return IntervalFigure.of(ratio_interval([(served, limit * cpus) for served, limit in pairs]))
    return rps.scaled(1 / (in_process_rps * cpus)) if rps is not None and in_process_rps else None


def _rounds_section(rounds: Rounds, name: str, in_process_rps: float | None, cpus: float) -> RoundsFigures:
    reports = rounds.reports[name]
    samples = {figure: [value(report) for report in reports] for figure, value in ROUND_FIGURES.items()}
    figures = {figure: IntervalFigure.of(log_interval(v)) if v else None for figure, v in samples.items()}
    thread_cpu = rounds.mean_thread_cpu(name)
    return RoundsFigures(
        **figures,
        samples=RoundSamples(**samples),
        failure=rounds.failures.get(name),
        in_process_rps=rounds.limits.get(name, []),
        thread_cpu_ms=RoundsThreadCpu.model_validate(thread_cpu) if thread_cpu is not None else None,
        efficiency=_rounds_efficiency(rounds, name, figures["rps"], in_process_rps, cpus),
    )


def _sweep_section(points: list[SweepPoint]) -> SweepFigures:
    return SweepFigures.model_validate(
        {
            "points": [asdict(p) for p in points],
            "best_rps": best_rps(points),
            "knee_concurrency": knee(completed(points)),
        }
    )


def _open_loop_run(point: OpenLoopPoint) -> OpenLoopRun:
    report = point.report
    latency = None
    if report and report.latency:
        # Named like ab's percentiles elsewhere in the report (p50, p90, p99, max, mean).
        latency = OpenLoopLatency.model_validate(
            {key.removesuffix("_ms"): round(value, 2) for key, value in asdict(report.latency).items()}
        )
    return OpenLoopRun(
        fraction_of_best=point.fraction,
        rate=point.rate,
        achieved_rps=round(report.achieved_rate_per_s, 2) if report else None,
        latency_corrected=report.latency_corrected if report else None,
        latency_ms=latency,
        requests=report.requests if report else None,
        errors=report.errors if report else None,
        non_2xx=report.non_2xx if report else None,
        failure=point.failure,
    )


def _capacity_section(capacity: Capacity, slo_ms: float) -> CapacityFigures:
    return CapacityFigures(
        slo_ms=slo_ms,
        rate=capacity.rate,
        bracket=capacity.bracket,
        at_least=capacity.at_least,
        probes=[
            CapacityProbe(
                rate=probe.rate,
                achieved=probe.achieved,
                p99_ms=round(probe.p99_ms, 2) if probe.p99_ms is not None else None,
                met=probe.met,
            )
            for probe in capacity.probes
        ],
    )


def _size_run(point: SizePoint) -> SizeRun:
    return SizeRun(
        width=point.width,
        height=point.height,
        megapixels=round(point.megapixels, 3),
        body_bytes=point.body_bytes,
        rps=point.rps,
        stages_ms=_stages(point.stages_ms),
        failure=point.failure,
    )


def _add_side_by_side(
    together: SideBySideResults, services: dict[str, ServiceSection], config: RunSettings
) -> dict[str, ServiceSection]:
    """Each service's section with its figures from the side-by-side measurements."""
    added = {}
    for name, section in services.items():
        update: dict[str, Any] = {}
        if together.rounds is not None and name in together.rounds.reports:
            update["rounds"] = _rounds_section(together.rounds, name, section.in_process_rps, config.cpus)
        if together.sweep and name in together.sweep:
            update["sweep"] = _sweep_section(together.sweep[name])
        if together.open_loop and name in together.open_loop:
            update["open_loop"] = [_open_loop_run(p) for p in together.open_loop[name]]
        if name in together.capacity:
            if config.slo_ms is None:
                raise ValueError("a capacity was measured, but the run's config has no slo_ms")
            update["capacity"] = _capacity_section(together.capacity[name], config.slo_ms)
        if together.sizes and name in together.sizes:
            update["sizes"] = [_size_run(p) for p in together.sizes[name]]
        added[name] = section.model_copy(update=update)
    return added


def rounds_ratio_intervals(rounds: Rounds) -> dict[str, IntervalFigure | None]:
    """Each ratio of RATIO_PAIRS over the rounds both services completed (paired: one moment each)."""
    return {
        name: IntervalFigure.of(ratio_interval(pairs)) if (pairs := rounds.paired(top, bottom)) else None
        for name, (top, bottom) in RATIO_PAIRS.items()
        if top in rounds.reports and bottom in rounds.reports
    }


def _against_usual_section(compared: UsualComparison) -> AgainstUsualFigures:
    return AgainstUsualFigures(
        usual=compared.usual,
        description=compared.description,
        image=UsualImage(tag=compared.image.tag, size_mb=compared.image.size_mb),
        rounds=[UsualRound.model_validate(r) for r in compared.rounds],
        ratio=IntervalFigure.of(compared.ratio("usual")),
        ratio_tuned=IntervalFigure.of(compared.ratio("usual_tuned")),
        max_abs_dp=compared.max_abs_dp,
        same_prediction=compared.same_prediction,
        failure=compared.failure,
    )


def _load_run_fields(measurement: LoadMeasurement, cpus: float) -> dict[str, Any]:
    """The fields of a service's section that come with its load run."""
    outcome = measurement.outcome
    resources = measurement.resources
    memory = [value for _, value in resources.memory_mb]
    cpu = [value for _, value in resources.cpu_percent]
    in_process_rps = round(measurement.in_process_rps, 2) if measurement.in_process_rps else None
    efficiency = None
    if outcome.ok and outcome.report and measurement.in_process_rps:
        efficiency = round(outcome.report.rps / (measurement.in_process_rps * cpus), 3)
    return {
        "model_id": measurement.health.get("model_id"),  # what the service says it serves
        "workers": measurement.health.get("workers"),
        "threads": measurement.health.get("threads"),
        "load": load_section(outcome.report, outcome.failure),
        "memory_mb": MemoryFigures(
            mean=round(statistics.fmean(memory), 1) if memory else None,
            peak=round(max(memory), 1) if memory else None,
            series=[(round(t, 2), round(v, 1)) for t, v in resources.memory_mb],
        ),
        "cpu_percent": CpuFigures(mean=round(statistics.fmean(cpu), 1) if cpu else None),
        "in_process_rps": in_process_rps,
        "stages_ms": _stages(measurement.stages_ms),
        "metrics_responses": dict(measurement.responses),
        "at_c1": _at_c1_section(measurement.at_c1) if measurement.at_c1 is not None else None,
        "in_process_stages_ms": measurement.in_process_detail.get("stages_ms", {}),
        "thread_cpu": (
            ThreadCpuFigures.model_validate(measurement.thread_cpu.as_dict())
            if measurement.thread_cpu is not None
            else None
        ),
        "efficiency": efficiency,
    }


def service_section(results: ServiceResults, cpus: float) -> ServiceSection:
    fields: dict[str, Any] = {}
    if results.image is not None:
        image = results.image
        fields["image"] = ImageInfo(tag=image.tag, id=image.image_id, size_mb=image.size_mb)
    unavailable = dict(results.unavailable)
    if results.startup_s:
        fields["startup_s"] = StartupFigures.model_validate(summary(results.startup_s))
    if results.memory_over_requests is not None:
        fields["memory_over_requests"] = _memory_over_requests_section(results.memory_over_requests)
    if results.against_usual is not None:
        fields["against_usual"] = _against_usual_section(results.against_usual)
    if (measurement := results.load) is not None:
        fields.update(_load_run_fields(measurement, cpus))
        if measurement.thread_cpu is None and measurement.thread_cpu_unavailable:
            unavailable["thread_cpu"] = measurement.thread_cpu_unavailable
    return ServiceSection.model_validate({**fields, "unavailable": unavailable or None})


#: Each ratio between services: the figure of a service's section it divides.
PAIR_FIGURES: dict[str, Callable[[ServiceSection], float | None]] = {
    "rps": lambda s: s.load.rps if s.load else None,
    "image_size_mb": lambda s: s.image.size_mb if s.image else None,
    "startup_s": lambda s: s.startup_s.median if s.startup_s else None,
    "memory_mb": lambda s: s.memory_mb.peak if s.memory_mb else None,
}


def _preprocess_over_network(section: ServiceSection) -> float | None:
    """In-process, one service's loop: preprocessing ÷ network (the eager model, or the graph's second half)."""
    stages = section.in_process_stages_ms or {}
    pre, net = stages.get("preprocess"), stages.get("model")
    return round(pre.mean / net.mean, 4) if pre and net and pre.mean and net.mean else None


#: A figure of one service with itself (not a ratio between services); thresholds name the service.
SERVICE_FIGURES: dict[str, Callable[[ServiceSection], float | None]] = {
    "memory_growth": lambda s: s.memory_over_requests.growth if s.memory_over_requests else None,
    # How much of the service time at c=1 the stages explain.
    "stage_coverage": lambda s: s.at_c1.coverage if s.at_c1 else None,
    "preprocess_over_network": _preprocess_over_network,
}


def _ratio_intervals(together: SideBySideResults, services: Mapping[str, ServiceSection]) -> RatioIntervals:
    """The ratios measured over rounds: the paired load rounds, and each service ÷ the usual implementation of its
    strategy (as written; with threads = the CPU limit)."""
    usual = {name: s.against_usual for name, s in services.items() if s.against_usual is not None}
    return RatioIntervals(
        rps=rounds_ratio_intervals(together.rounds) if together.rounds is not None else None,
        over_usual={name: c.ratio for name, c in usual.items() if c.ratio is not None},
        over_usual_tuned={name: c.ratio_tuned for name, c in usual.items() if c.ratio_tuned is not None},
    )


def _ratios(
    services: Mapping[str, ServiceSection], capacity: Mapping[str, Capacity], intervals: RatioIntervals
) -> Ratios:
    by_metric = {metric: ratios({n: figure(s) for n, s in services.items()}) for metric, figure in PAIR_FIGURES.items()}
    # Capacities found within the search (a capacity at the search's top is a lower bound: no ratio of it).
    by_metric["capacity_rps"] = ratios(
        {name: None if c.at_least else c.rate for name, c in capacity.items() if name in services}
    )
    for metric, figure in SERVICE_FIGURES.items():
        by_metric[metric] = {name: value for name, s in services.items() if (value := figure(s)) is not None}
    # A ratio measured over rounds is their centre (the single load run's ratio stays in the services' sections).
    for metric, by_name in intervals.by_metric().items():
        by_metric.setdefault(metric, {}).update({name: f.centre for name, f in by_name.items() if f is not None})
    return Ratios.model_validate(by_metric)


def build_report(
    run_id: str,
    created_at: str,
    environment: Mapping[str, Any],
    config: Mapping[str, Any],
    results: Mapping[str, ServiceResults],
    thresholds: Mapping[str, float],
    model: Mapping[str, Any] | None = None,
    together: SideBySideResults | None = None,
) -> Report:
    """The report of a run: ``environment`` (report/environment), ``config`` (perf/config.RunConfig.describe) and
    ``model`` forwarded as given, the rest computed from the measurements."""
    settings = RunSettings.model_validate(dict(config))
    together = together or SideBySideResults()
    services = {name: service_section(r, settings.cpus) for name, r in results.items()}
    services = _add_side_by_side(together, services, settings)
    intervals = _ratio_intervals(together, services)
    all_ratios = _ratios(services, together.capacity, intervals)
    assertions = [
        assertion.model_copy(update={"not_measured": not_measured_reason(assertion.name, services)})
        if assertion.passed is None
        else assertion
        for assertion in evaluate(all_ratios.by_metric(), thresholds, intervals.by_metric(), settings.ratio_bound)
    ]
    images = {name: s.image for name, s in services.items() if s.image is not None}
    return Report(
        schema_version=SCHEMA_VERSION,
        run_id=run_id,
        created_at=created_at,
        environment=Environment.model_validate({**environment, "images": images}),
        config=settings,
        model=ModelInfo.model_validate(dict(model or {})),
        services=services,
        ratios=all_ratios,
        ratio_intervals=intervals,
        assertions=assertions,
    )
