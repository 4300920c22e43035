"""One benchmark run: its configuration, the images, the results gathered by the perf tests, and the report.

With ``targets`` (``--target``, perf/target) the run measures services already running at given URLs: nothing is
built or started, the measurements that need the suite's own containers raise perf.target.Unavailable, and the
report names those figures per service.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from model_core.manifest import model_file, read_manifest
from model_serving.artifacts import SPLIT_FILES
from model_serving.corpus import sized_payload_paths
from model_serving.curves import Capacity
from model_serving.docker.build import BuiltImage, build_service_image
from model_serving.docker.containers import RunningService, run_service
from model_serving.load.ab_parser import LoadOutcome
from model_serving.load.ab_runner import run_ab
from model_serving.perf.config import RunConfig
from model_serving.perf.endpoint import Endpoint
from model_serving.perf.measure import (
    SPLIT_BENCH_SERVICES,
    LoadMeasurement,
    MeasurementError,
    MemoryOverRequests,
    ServiceStarter,
    in_process_rate,
    load_with_stages,
    measure_load,
    measure_memory_over_requests,
    service_threads,
    thread_cpu_over,
)
from model_serving.perf.open_loop import OpenLoopPoint, OpenLoopSettings, run_capacity, run_open_loop
from model_serving.perf.rounds import Rounds, Target, load_round, side_by_side
from model_serving.perf.sizes import SizePoint, run_sizes
from model_serving.perf.sweep import SweepPoint, best_rps, run_sweep
from model_serving.perf.target import UNAVAILABLE, TargetService, Unavailable, common_model_id, warmed_up
from model_serving.report.document import ServiceResults, SideBySideResults, build_report
from model_serving.report.environment import environment
from model_serving.report.sections import Report
from model_serving.report.store import new_run_id, save_report
from model_serving.usual.build import USUAL, UsualUnavailable, build_usual_image
from model_serving.usual.compare import UsualComparison, compare_with_usual

log = logging.getLogger(__name__)

NO_SPLIT_GRAPH = (
    "the artifacts have no preprocessing and network halves (a prebuilt ONNX model was given): the in-process"
    " bench times the served graph whole, so preprocessing ÷ network is not measured"
)


@dataclass
class PerfRun:
    config: RunConfig
    model_dir: Path | None  # None with targets: the services serve what they serve
    reports_dir: Path
    jpeg: Path
    body: Path
    results: dict[str, ServiceResults] = field(default_factory=dict)
    report_folder: Path | None = None  # where write_report saved the report (once, at the end of the run)
    # What was measured with the services side by side (one measurement of them all, perf/rounds.side_by_side).
    together: SideBySideResults = field(default_factory=SideBySideResults)
    # --target: the services already running, checked healthy (perf/target.check_targets); empty: the suite's own.
    targets: Mapping[str, TargetService] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_id, self.created_at = new_run_id()

    def results_for(self, service: str) -> ServiceResults:
        """The service's results, building (or reusing) its image on first use (with targets: no image, and the
        figures that need one named unavailable)."""
        if service not in self.results:
            if self.targets:
                self.results[service] = ServiceResults(None, unavailable=dict(UNAVAILABLE))
            elif self.model_dir is None:
                raise ValueError("a run without targets needs the model's artifact folder")
            else:
                self.results[service] = ServiceResults(build_service_image(service, self.model_dir))
        return self.results[service]

    def _image(self, service: str) -> BuiltImage:
        """The service's image, for a measurement that starts containers of it (none with targets)."""
        image = self.results_for(service).image
        if image is None:
            raise Unavailable(UNAVAILABLE["image"])
        return image

    def unavailable(self, figure: str) -> str | None:
        """Why this run cannot take ``figure`` (a field of a service's report section), or None when it can."""
        return UNAVAILABLE.get(figure) if self.targets else None

    def _needs_containers(self, figure: str) -> None:
        if reason := self.unavailable(figure):
            raise Unavailable(reason)

    def startups(self, service: str) -> ServiceStarter:
        self._needs_containers("startup_s")
        return ServiceStarter(service, self._image(service).tag, self.config.profile.cpus)

    def load(self, service: str) -> LoadMeasurement:
        results = self.results_for(service)
        profile = self.config.profile
        if service in self.targets:
            target = self.targets[service]
            log.info(f"{service}: ab -n {profile.requests} -c {profile.concurrency} at {target.base_url}")
            results.load = load_with_stages(
                target,
                self.body,
                profile.requests,
                profile.concurrency,
                profile.warmup_requests,
                profile.requests_c1,
            )
            return results.load
        log.info(f"{service}: ab -n {profile.requests} -c {profile.concurrency} at {profile.cpus} CPU")
        if self._split_graph is None and service in SPLIT_BENCH_SERVICES:
            results.unavailable["in_process_stages_ms"] = NO_SPLIT_GRAPH
        results.load = measure_load(
            service,
            self._image(service).tag,
            profile.cpus,
            self.body,
            self._jpeg_bytes,
            profile.requests,
            profile.concurrency,
            profile.warmup_requests,
            profile.in_process_seconds,
            profile.requests_c1,
            self._split_graph,
        )
        return results.load

    @cached_property
    def _jpeg_bytes(self) -> bytes:
        """The benchmark image, read once a run: each in-process bench (the load test's, every round's) copies it in."""
        return self.jpeg.read_bytes()

    @cached_property
    def _split_graph(self) -> tuple[bytes, bytes] | None:
        """The served graph's two halves, when the export made them, for the ONNX services' in-process bench (read
        and checked once a run)."""
        if self.model_dir is None:
            return None
        manifest = read_manifest(self.model_dir)
        if not all(role in manifest["files"] for role in SPLIT_FILES):
            return None
        preprocess, network = (model_file(self.model_dir, manifest, role).read_bytes() for role in SPLIT_FILES)
        return preprocess, network

    @contextmanager
    def side_by_side(self) -> Iterator[Mapping[str, Endpoint]]:
        """The services up together under the CPU limit, warmed up, for the measurements that interleave them (with
        targets: those, warmed up; nothing started)."""
        profile = self.config.profile
        if self.targets:
            chosen = {name: self.targets[name] for name in self.config.services}
            for name in chosen:
                self.results_for(name)
            yield warmed_up(chosen, self.body, profile.concurrency, profile.warmup_requests)
            return
        targets = {name: Target(name, self._image(name).tag) for name in self.config.services}
        with side_by_side(targets, profile.cpus, self.body, profile.concurrency, profile.warmup_requests) as running:
            yield running

    def load_round(self, running: Mapping[str, Endpoint], name: str, index: int) -> LoadOutcome:
        """Round ``index`` of the interleaved load rounds for one service (the perf tests call them in the rotated
        order perf/rounds.rotated gives, so that each round's runs of the services are back to back)."""
        profile = self.config.profile
        if self.together.rounds is None:
            self.together.rounds = Rounds({name: [] for name in running})
        rounds = self.together.rounds
        outcome, measured, _ = thread_cpu_over(  # the load test's section says why threads cannot be read
            service_threads(running[name]),
            lambda: load_round(
                rounds,
                running,
                name,
                self.body,
                profile.round_requests,
                profile.concurrency,
                index,
                profile.rounds,
            ),
            lambda outcome: outcome,
        )
        if measured is not None:
            rounds.thread_cpu.setdefault(name, []).append(measured)
        return outcome

    def round_limit(self, running: Mapping[str, Endpoint], name: str, index: int) -> float | None:
        """Right after round ``index`` of ``name`` was kept: the in-process req/s in its container, recorded with the
        round (None, and nothing run, for a service the suite did not start or with round_in_process_seconds 0)."""
        seconds = self.config.profile.round_in_process_seconds
        service = running[name]
        if self.together.rounds is None or seconds <= 0 or not isinstance(service, RunningService):
            return None
        log.info(f"{name}: round {index + 1}, in-process limit in its container, one thread, {seconds:.0f} s")
        try:
            limit: float | None = in_process_rate(service, self._jpeg_bytes, seconds)["rps"]
        except MeasurementError as error:
            log.warning(f"{name}: round {index + 1}: {error}")
            limit = None
        self.together.rounds.record_limit(name, limit)
        return limit

    def round_failed(self, name: str) -> str | None:
        return self.together.rounds.failures.get(name) if self.together.rounds else None

    def concurrency_sweep(self, running: Mapping[str, Endpoint]) -> dict[str, list[SweepPoint]]:
        profile = self.config.profile
        log.info(f"concurrency sweep: c = {', '.join(map(str, profile.sweep_concurrency))}")
        self.together.sweep = run_sweep(running, self.body, profile.sweep_concurrency, profile.sweep_requests)
        return self.together.sweep

    def best_rps(self) -> dict[str, float]:
        """Each service's best closed-loop req/s: the sweep's best level, else its best load round."""
        best: dict[str, float] = {}
        for name, points in (self.together.sweep or {}).items():
            if (rate := best_rps(points)) is not None:
                best[name] = rate
        for name, reports in (rounds.reports if (rounds := self.together.rounds) else {}).items():
            if name not in best and reports:
                best[name] = max(r.rps for r in reports)
        return best

    def _open_loop_settings(self) -> OpenLoopSettings:
        profile = self.config.profile
        return OpenLoopSettings(profile.open_loop_seconds, profile.open_loop_connections)

    def open_loop_runs(self, running: Mapping[str, Endpoint]) -> dict[str, list[OpenLoopPoint]]:
        profile = self.config.profile
        log.info(f"open loop: {', '.join(f'{f:g}' for f in profile.open_loop_fractions)} × best req/s")
        self.together.open_loop = run_open_loop(
            running, self.body, self.best_rps(), profile.open_loop_fractions, self._open_loop_settings()
        )
        return self.together.open_loop

    def capacity_under_bound(self, running: Mapping[str, Endpoint], name: str) -> Capacity:
        profile = self.config.profile
        best = self.best_rps()[name]
        log.info(
            f"{name}: capacity with p99 ≤ {profile.slo_ms:g} ms, {profile.capacity_steps} probes in "
            f"[0.3, 1.2] × {best:.1f} req/s"
        )
        self.together.capacity[name] = run_capacity(
            running[name],
            self.body,
            best,
            profile.slo_ms,
            profile.capacity_steps,
            self._open_loop_settings(),
        )
        return self.together.capacity[name]

    def payload_sizes(self, running: Mapping[str, Endpoint]) -> dict[str, list[SizePoint]]:
        profile = self.config.profile
        payloads = [(w, h, sized_payload_paths(w, h)[1]) for w, h in profile.payload_sizes]
        self.together.sizes = run_sizes(running, payloads, profile.size_requests, profile.concurrency)
        return self.together.sizes

    def load_held(self, service: str) -> LoadOutcome:
        """ab at the profile's held concurrency (at least as many requests): no failure allowed, nothing kept."""
        self.results_for(service)
        profile = self.config.profile
        concurrency = profile.held_concurrency
        requests = max(profile.requests, concurrency * 2)
        log.info(f"{service}: load held? ab -n {requests} -c {concurrency}")
        if service in self.targets:
            url = f"{self.targets[service].base_url}/predict/"
            return run_ab(url, self.body, requests, concurrency, service, 120)
        with run_service(service, self._image(service).tag, profile.cpus) as running:
            return run_ab(f"{running.base_url}/predict/", self.body, requests, concurrency, service, 120)

    def memory_over_requests(self, service: str) -> MemoryOverRequests:
        self._needs_containers("memory_over_requests")
        results = self.results_for(service)
        profile = self.config.profile
        log.info(
            f"{service}: memory over {profile.memory_requests} requests "
            f"({profile.memory_batches} batches, c={profile.concurrency})"
        )
        results.memory_over_requests = measure_memory_over_requests(
            service,
            self._image(service).tag,
            profile.cpus,
            self.body,
            profile.memory_requests,
            profile.memory_batches,
            profile.concurrency,
            profile.warmup_requests,
        )
        return results.memory_over_requests

    def against_usual(self, service: str) -> UsualComparison:
        """Paired ab runs of the service and the usual implementation of its strategy (model_serving.usual)."""
        self._needs_containers("against_usual")
        results, image = self.results_for(service), self._image(service)
        assert self.model_dir is not None  # set whenever the suite builds the images
        try:
            usual = build_usual_image(service, self.model_dir, image)
        except UsualUnavailable as reason:
            # Recorded, so that the over_usual thresholds say why they have no figure (perf/thresholds).
            results.unavailable["against_usual"] = str(reason)
            raise
        profile = self.config.profile
        results.against_usual = compare_with_usual(
            service,
            image.tag,
            usual,
            USUAL[service].description,
            profile.cpus,
            self._jpeg_bytes,
            self.body,
            profile.usual_requests,
            profile.concurrency,
            profile.usual_rounds,
            profile.warmup_requests,
        )
        return results.against_usual

    def build_report(self) -> Report:
        """The report of whatever was measured so far (also after failures); nothing written."""
        ordered = {name: self.results[name] for name in self.config.services if name in self.results}
        return build_report(
            self.run_id,
            self.created_at,
            environment(engine=not self.targets),
            self.config.describe(),
            ordered,
            self.config.thresholds,
            self._model(),
            self.together,
        )

    def write_report(self) -> Report:
        """Build the report and save it (report.json, summary.md, plots): once, when the run ends."""
        if self.report_folder is not None:
            raise RuntimeError(f"the report of run {self.run_id} is already written to {self.report_folder}")
        report = self.build_report()
        self.report_folder = save_report(report, self.reports_dir)
        log.info(f"report written to {self.report_folder}")
        return report

    def _model(self) -> dict[str, Any]:
        """The model measured: its artifacts' manifest; with targets, the model_id they all report (none if not)."""
        if self.model_dir is None:
            model_id = common_model_id(self.targets)
            return {"model_id": model_id} if model_id else {}
        manifest = read_manifest(self.model_dir)
        # The recipe always holds the source (older manifests have no top-level "source").
        source = manifest.get("source") or manifest.get("recipe", {}).get("source")
        return {"model_id": manifest["model_id"], "source": source, "directory": str(self.model_dir)}
