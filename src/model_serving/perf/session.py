"""One benchmark run: its configuration, the images, the results gathered by the perf tests, and the report."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from model_serving.artifacts import SPLIT_FILES
from model_serving.corpus import sized_payload_paths
from model_serving.curves import Capacity
from model_serving.docker.build import build_service_image
from model_serving.docker.containers import RunningService, run_service
from model_serving.load.ab_parser import LoadOutcome
from model_serving.load.ab_runner import run_ab
from model_serving.perf.config import RunConfig
from model_serving.perf.measure import (
    LoadMeasurement,
    MemoryOverRequests,
    ServiceStarter,
    measure_load,
    measure_memory_over_requests,
)
from model_serving.perf.open_loop import OpenLoopPoint, OpenLoopSettings, run_capacity, run_open_loop
from model_serving.perf.rounds import Rounds, Target, load_round, side_by_side
from model_serving.perf.sizes import SizePoint, run_sizes
from model_serving.perf.sweep import SweepPoint, best_rps, run_sweep
from model_serving.report.document import ServiceResults, SideBySideResults, build_report
from model_serving.report.environment import environment
from model_serving.report.store import new_run_id, save_report
from model_serving.usual.build import USUAL, build_usual_image
from model_serving.usual.compare import UsualComparison, compare_with_usual
from serving_common.manifest import model_file, read_manifest

Progress = Callable[[str], None]


@dataclass
class PerfRun:
    config: RunConfig
    model_dir: Path
    reports_dir: Path
    jpeg: Path
    body: Path
    progress: Progress
    results: dict[str, ServiceResults] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    report_folder: Path | None = None
    # What was measured with the services side by side (one measurement of them all, perf/rounds.side_by_side).
    together: SideBySideResults = field(default_factory=SideBySideResults)

    def __post_init__(self) -> None:
        self.run_id, self.created_at = new_run_id()

    def results_for(self, service: str) -> ServiceResults:
        """The service's results, building (or reusing) its image on first use."""
        if service not in self.results:
            image = build_service_image(service, self.model_dir, self.progress)
            self.results[service] = ServiceResults(image)
        return self.results[service]

    def startups(self, service: str) -> ServiceStarter:
        results = self.results_for(service)
        return ServiceStarter(service, results.image.tag, self.config.profile.cpus)

    def load(self, service: str) -> LoadMeasurement:
        results = self.results_for(service)
        profile = self.config.profile
        self.progress(f"{service}: ab -n {profile.requests} -c {profile.concurrency} at {profile.cpus} CPU")
        results.load = measure_load(
            service,
            results.image.tag,
            profile.cpus,
            self.body,
            self.jpeg.read_bytes(),
            profile.requests,
            profile.concurrency,
            profile.warmup_requests,
            profile.in_process_seconds,
            self.progress,
            profile.requests_c1,
            self._split_graph,
        )
        return results.load

    @cached_property
    def _split_graph(self) -> tuple[bytes, bytes] | None:
        """The served graph's two halves, when the export made them, for the ONNX services' in-process bench (read
        and checked once a run)."""
        manifest = read_manifest(self.model_dir)
        if not all(role in manifest["files"] for role in SPLIT_FILES):
            return None
        preprocess, network = (model_file(self.model_dir, manifest, role).read_bytes() for role in SPLIT_FILES)
        return preprocess, network

    @contextmanager
    def side_by_side(self) -> Iterator[dict[str, RunningService]]:
        """The services up together under the CPU limit, warmed up, for the measurements that interleave them."""
        profile = self.config.profile
        targets = {name: Target(name, self.results_for(name).image.tag) for name in self.config.services}
        with side_by_side(
            targets, profile.cpus, self.body, profile.concurrency, profile.warmup_requests, self.progress
        ) as running:
            yield running

    def load_round(self, running: Mapping[str, RunningService], name: str, index: int) -> LoadOutcome:
        """Round ``index`` of the interleaved load rounds for one service (the perf tests call them in the rotated
        order perf/rounds.rotated gives, so that each round's runs of the services are back to back)."""
        profile = self.config.profile
        if self.together.rounds is None:
            self.together.rounds = Rounds({name: [] for name in running})
        return load_round(
            self.together.rounds,
            running,
            name,
            self.body,
            profile.round_requests,
            profile.concurrency,
            index,
            profile.rounds,
            self.progress,
        )

    def round_failed(self, name: str) -> str | None:
        return self.together.rounds.failures.get(name) if self.together.rounds else None

    def concurrency_sweep(self, running: Mapping[str, RunningService]) -> dict[str, list[SweepPoint]]:
        profile = self.config.profile
        self.progress(f"concurrency sweep: c = {', '.join(map(str, profile.sweep_concurrency))}")
        self.together.sweep = run_sweep(
            running, self.body, profile.sweep_concurrency, profile.sweep_requests, self.progress
        )
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

    def open_loop_runs(self, running: Mapping[str, RunningService]) -> dict[str, list[OpenLoopPoint]]:
        profile = self.config.profile
        self.progress(f"open loop: {', '.join(f'{f:g}' for f in profile.open_loop_fractions)} × best req/s")
        self.together.open_loop = run_open_loop(
            running, self.body, self.best_rps(), profile.open_loop_fractions, self._open_loop_settings(), self.progress
        )
        return self.together.open_loop

    def capacity_under_bound(self, running: Mapping[str, RunningService], name: str) -> Capacity:
        profile = self.config.profile
        best = self.best_rps()[name]
        self.progress(
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
            self.progress,
        )
        return self.together.capacity[name]

    def payload_sizes(self, running: Mapping[str, RunningService]) -> dict[str, list[SizePoint]]:
        profile = self.config.profile
        payloads = [(w, h, sized_payload_paths(w, h)[1]) for w, h in profile.payload_sizes]
        self.together.sizes = run_sizes(running, payloads, profile.size_requests, profile.concurrency, self.progress)
        return self.together.sizes

    def load_held(self, service: str) -> LoadOutcome:
        """ab at the profile's held concurrency (at least as many requests): no failure allowed, nothing kept."""
        results = self.results_for(service)
        profile = self.config.profile
        concurrency = profile.held_concurrency
        requests = max(profile.requests, concurrency * 2)
        self.progress(f"{service}: load held? ab -n {requests} -c {concurrency}")
        with run_service(service, results.image.tag, profile.cpus) as running:
            return run_ab(f"{running.base_url}/predict/", self.body, requests, concurrency, service, self.progress, 120)

    def memory_over_requests(self, service: str) -> MemoryOverRequests:
        results = self.results_for(service)
        profile = self.config.profile
        self.progress(
            f"{service}: memory over {profile.memory_requests} requests "
            f"({profile.memory_batches} batches, c={profile.concurrency})"
        )
        results.memory_over_requests = measure_memory_over_requests(
            service,
            results.image.tag,
            profile.cpus,
            self.body,
            profile.memory_requests,
            profile.memory_batches,
            profile.concurrency,
            profile.warmup_requests,
            self.progress,
        )
        return results.memory_over_requests

    def against_usual(self, service: str) -> UsualComparison:
        """Paired ab runs of the service and the usual implementation of its strategy (model_serving.usual)."""
        results = self.results_for(service)
        usual = build_usual_image(service, self.model_dir, self.progress, results.image)
        profile = self.config.profile
        results.against_usual = compare_with_usual(
            service,
            results.image.tag,
            usual,
            USUAL[service].description,
            profile.cpus,
            self.jpeg.read_bytes(),
            self.body,
            profile.usual_requests,
            profile.concurrency,
            profile.usual_rounds,
            profile.warmup_requests,
            self.progress,
        )
        return results.against_usual

    def write_report(self) -> dict[str, Any]:
        """Build and save the report from whatever was measured (also after failures)."""
        ordered = {name: self.results[name] for name in self.config.services if name in self.results}
        manifest = read_manifest(self.model_dir)
        # The recipe always holds the source (older manifests have no top-level "source").
        source = manifest.get("source") or manifest.get("recipe", {}).get("source")
        model = {"model_id": manifest["model_id"], "source": source, "directory": str(self.model_dir)}
        self.report = build_report(
            self.run_id,
            self.created_at,
            environment(),
            self.config.describe(),
            ordered,
            self.config.thresholds,
            model,
            self.together,
        )
        self.report_folder = save_report(self.report, self.reports_dir)
        self.progress(f"report written to {self.report_folder}")
        return self.report
