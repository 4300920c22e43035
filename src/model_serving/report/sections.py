"""The report (``report.json``) as typed sections: pydantic models named after report.schema.json's definitions.

report/document builds a :class:`Report` from the measurements; the summary, the plots and the ratios read its
fields; report/store writes its JSON (:meth:`Figures.to_json`) once. :meth:`Report.from_json` reads a written report
back. The JSON's rule (the schema's): a figure that could not be measured is null where its field is present; a
section whose measurement did not run is left out (``LEFT_OUT_WHEN_NONE``, or :meth:`Figures.left_out`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from model_serving.stats import Interval

SCHEMA_VERSION = 2


class Figures(BaseModel):
    """A fixed object of the report: unknown fields are refused, as by the schema's ``additionalProperties``."""

    # model_id is a report field, not pydantic's namespace.
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    #: Fields left out of the JSON when None: a section whose measurement did not run.
    LEFT_OUT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()

    def left_out(self) -> set[str]:
        """The fields this object's JSON leaves out."""
        return {name for name in self.LEFT_OUT_WHEN_NONE if getattr(self, name) is None}

    @model_serializer(mode="wrap")
    def _without_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        left_out = self.left_out()
        return {key: value for key, value in data.items() if key not in left_out}

    def to_json(self) -> dict[str, Any]:
        """The object as written to report.json (tuples as lists, sections left out as the schema says)."""
        return self.model_dump(mode="json")


class Forwarded(Figures):
    """An object the report forwards as given (environment, config, model): typed where the report reads it, any
    other field kept, a field not given left out."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    def left_out(self) -> set[str]:
        return set(type(self).model_fields) - self.model_fields_set


class ImageInfo(Figures):
    tag: str
    id: str
    size_mb: float


class IntervalFigure(Figures):
    """A figure over rounds with its 95 % interval: ``centre`` is the geometric mean [low, high] is around,
    ``median`` the rounds' own, ``half_width`` relative to the centre."""

    centre: float
    low: float
    high: float
    median: float
    rounds: int
    half_width: float

    @classmethod
    def of(cls, interval: Interval | None) -> IntervalFigure | None:
        if interval is None:
            return None
        return cls(
            centre=interval.centre,
            low=interval.low,
            high=interval.high,
            median=interval.median,
            rounds=interval.samples,
            half_width=round(interval.half_width, 4),
        )

    def scaled(self, factor: float) -> IntervalFigure:
        """Its values times ``factor`` (its rounds and relative half-width unchanged)."""
        return self.model_copy(
            update={key: round(getattr(self, key) * factor, 3) for key in ("centre", "low", "high", "median")}
        )


class AbLatency(Figures):
    """ab's percentile table, ms."""

    p50: float
    p66: float
    p75: float
    p80: float
    p90: float
    p95: float
    p98: float
    p99: float
    max: float


class SweepLatency(Figures):
    p50: float
    p90: float
    p99: float


class OpenLoopLatency(Figures):
    p50: float
    p90: float
    p99: float
    max: float
    mean: float


class StageFigure(Figures):
    """One stage from the service's /metrics histograms over one run, ms; ``count``: requests through it."""

    mean: float
    p50: float | None
    p99: float | None
    count: int


class InProcessStage(Figures):
    """One stage timed by the in-process bench's own clocks, ms."""

    mean: float
    p50: float
    p99: float


class StartupFigures(Figures):
    median: float
    mean: float
    min: float
    max: float
    samples: list[float]


class MemoryOverRequestsFigures(Figures):
    points: list[tuple[int, float]]  # (requests served so far, MB at rest)
    growth: float | None
    failure: str | None


class UsualImage(Figures):
    tag: str
    size_mb: float


class UsualRound(Figures):
    ours: float
    usual: float
    usual_tuned: float


class AgainstUsualFigures(Figures):
    usual: str
    description: str
    image: UsualImage
    rounds: list[UsualRound]
    ratio: IntervalFigure | None
    ratio_tuned: IntervalFigure | None
    max_abs_dp: float | None
    same_prediction: bool | None
    failure: str | None


class LoadFigures(Figures):
    """The load run from ab's output; when ab did not finish, only ``failure`` (``requests`` None)."""

    requests: int | None = None
    concurrency: int | None = None
    failed: int | None = None
    non_2xx: int | None = None
    rps: float | None = None
    time_taken_s: float | None = None
    time_per_request_ms: float | None = None
    time_per_request_all_ms: float | None = None
    latency_mean_ms: float | None = None
    transfer_rate_mb_s: float | None = None
    latency_ms: AbLatency | None = None
    failure: str | None = None

    def left_out(self) -> set[str]:
        return set(type(self).model_fields) - {"failure"} if self.requests is None else set()


class MemoryFigures(Figures):
    mean: float | None
    peak: float | None
    series: list[tuple[float, float]]  # (seconds since sampling started, MB)


class CpuFigures(Figures):
    mean: float | None


class AtC1Figures(Figures):
    """A short ab run at c=1, its stages from /metrics; ``coverage`` = stage_sum_ms ÷ mean_ms."""

    requests: int | None
    mean_ms: float | None
    latency_ms: AbLatency | dict[str, float]  # empty when ab did not finish
    stages_ms: dict[str, StageFigure]
    stage_sum_ms: float | None
    failure: str | None
    coverage: float | None


class ThreadCpuMs(Figures):
    server: float
    worker: float
    other: float
    total: float


class ThreadFigure(Figures):
    name: str
    role: Literal["server", "worker", "other"]
    ms_per_request: float


class ThreadCpuFigures(Figures):
    requests: int
    ms_per_request: ThreadCpuMs
    threads: list[ThreadFigure]


class RoundsThreadCpu(ThreadCpuMs):
    rounds: int


class RoundSamples(Figures):
    rps: list[float]
    p50_ms: list[float]
    p99_ms: list[float]


class RoundsFigures(Figures):
    rps: IntervalFigure | None
    p50_ms: IntervalFigure | None
    p99_ms: IntervalFigure | None
    samples: RoundSamples
    failure: str | None
    in_process_rps: list[float | None] = []
    thread_cpu_ms: RoundsThreadCpu | None = None
    efficiency: IntervalFigure | None = None

    LEFT_OUT_WHEN_NONE = frozenset({"thread_cpu_ms"})


class SweepLevel(Figures):
    concurrency: int
    requests: int
    rps: float | None
    latency_ms: SweepLatency | None
    errors: int | None
    failure: str | None


class SweepFigures(Figures):
    points: list[SweepLevel]
    best_rps: float | None
    knee_concurrency: int | None


class OpenLoopRun(Figures):
    fraction_of_best: float | None
    rate: float
    achieved_rps: float | None
    latency_corrected: bool | None
    latency_ms: OpenLoopLatency | None
    requests: int | None
    errors: int | None
    non_2xx: int | None
    failure: str | None


class CapacityProbe(Figures):
    rate: float
    achieved: float | None
    p99_ms: float | None
    met: bool


class CapacityFigures(Figures):
    slo_ms: float
    rate: float | None
    bracket: tuple[float, float]
    at_least: bool
    probes: list[CapacityProbe]


class SizeRun(Figures):
    width: int
    height: int
    megapixels: float
    body_bytes: int
    rps: float | None
    stages_ms: dict[str, StageFigure]
    failure: str | None


class ServiceSection(Figures):
    """One service's figures. The load run's fields (:data:`WITH_LOAD`) are written exactly when ``load`` is."""

    image: ImageInfo | None = None
    unavailable: dict[str, str] | None = None
    startup_s: StartupFigures | None = None
    memory_over_requests: MemoryOverRequestsFigures | None = None
    against_usual: AgainstUsualFigures | None = None
    model_id: str | None = None
    workers: int | None = None
    threads: int | None = None
    load: LoadFigures | None = None
    memory_mb: MemoryFigures | None = None
    cpu_percent: CpuFigures | None = None
    in_process_rps: float | None = None
    stages_ms: dict[str, StageFigure] | None = None
    metrics_responses: dict[str, float] | None = None
    at_c1: AtC1Figures | None = None
    in_process_stages_ms: dict[str, InProcessStage] | None = None
    thread_cpu: ThreadCpuFigures | None = None
    efficiency: float | None = None
    rounds: RoundsFigures | None = None
    sweep: SweepFigures | None = None
    open_loop: list[OpenLoopRun] | None = None
    capacity: CapacityFigures | None = None
    sizes: list[SizeRun] | None = None

    WITH_LOAD: ClassVar[frozenset[str]] = frozenset(
        {
            "model_id",
            "workers",
            "threads",
            "memory_mb",
            "cpu_percent",
            "in_process_rps",
            "stages_ms",
            "metrics_responses",
            "in_process_stages_ms",
            "efficiency",
        }
    )
    LEFT_OUT_WHEN_NONE = frozenset(
        {
            "image",
            "unavailable",
            "startup_s",
            "memory_over_requests",
            "against_usual",
            "load",
            "at_c1",
            "thread_cpu",
            "rounds",
            "sweep",
            "open_loop",
            "capacity",
            "sizes",
        }
    )

    def left_out(self) -> set[str]:
        return super().left_out() | (set(self.WITH_LOAD) if self.load is None else set())


class Environment(Forwarded):
    """Where the run was measured (report/environment), plus the images measured."""

    host_cpu: str | None = None
    host_cores: int | None = None
    docker_engine: str | None = None
    ab: str | None = None
    images: dict[str, ImageInfo] = {}


class RunSettings(Forwarded):
    """The run's settings (perf/config.RunConfig.describe): the fields the report reads, typed; the rest kept."""

    profile: str
    requests: int
    concurrency: int
    cpus: float
    startup_runs: int | None = None
    payload: str
    rounds: int | None = None
    round_requests: int | None = None
    slo_ms: float | None = None
    capacity_steps: int | None = None
    open_loop_seconds: float | None = None
    ratio_bound: Literal["centre", "interval"] = "centre"
    targets: dict[str, str] | None = None


class ModelInfo(Forwarded):
    """The model measured, from its artifacts' manifest (source: artifacts.ModelSource.describe); empty when not
    given."""

    model_id: str | None = None
    source: dict[str, Any] | None = None
    directory: str | None = None


class Ratios(Figures):
    """Ratios by metric, then by ratio name (model_serving.services.RATIO_PAIRS) or service."""

    rps: dict[str, float] = {}
    image_size_mb: dict[str, float] = {}
    startup_s: dict[str, float] = {}
    memory_mb: dict[str, float] = {}
    capacity_rps: dict[str, float] = {}
    memory_growth: dict[str, float] = {}
    stage_coverage: dict[str, float] = {}
    preprocess_over_network: dict[str, float] = {}
    over_usual: dict[str, float] = {}
    over_usual_tuned: dict[str, float] = {}

    def by_metric(self) -> dict[str, dict[str, float]]:
        return {metric: getattr(self, metric) for metric in type(self).model_fields}


class RatioIntervals(Figures):
    """The ratios measured over rounds, with their 95 % intervals; ``rps`` only when there were load rounds."""

    rps: dict[str, IntervalFigure | None] | None = None
    over_usual: dict[str, IntervalFigure] = {}
    over_usual_tuned: dict[str, IntervalFigure] = {}

    LEFT_OUT_WHEN_NONE = frozenset({"rps"})

    def by_metric(self) -> dict[str, dict[str, IntervalFigure | None]]:
        measured = {"over_usual": self.over_usual, "over_usual_tuned": self.over_usual_tuned}
        return measured if self.rps is None else {"rps": self.rps, **measured}


class Assertion(Figures):
    """One threshold ``<metric>.<ratio>.<min|max>`` checked (report/ratios.evaluate); ``passed`` None: the ratio was
    not measured, ``not_measured`` says why. ``interval`` and ``checked``: the ratio was measured over rounds."""

    name: str
    measured: float | None
    threshold: float
    passed: bool | None
    not_measured: str | None = None
    interval: tuple[float, float] | None = None
    checked: float | None = None

    LEFT_OUT_WHEN_NONE = frozenset({"not_measured", "interval"})

    def left_out(self) -> set[str]:
        return super().left_out() | ({"checked"} if self.interval is None else set())


class Report(Figures):
    """What one benchmark run measured (report.json)."""

    schema_version: Literal[2] = SCHEMA_VERSION
    run_id: str
    created_at: str
    environment: Environment
    config: RunSettings
    model: ModelInfo
    services: dict[str, ServiceSection]
    ratios: Ratios
    ratio_intervals: RatioIntervals
    assertions: list[Assertion]

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Report:
        """A report as read back from report.json."""
        return cls.model_validate(document)
