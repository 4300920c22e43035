"""Measuring one service: start-ups, an ab load run with memory and CPU sampled and its stages scraped from
``/metrics``, a short run at c=1 (where stages add up to the service time), and the in-process limit and stages.

Each measurement starts its own container(s) under the CPU limit and removes them; nothing else runs beside
the service while it is measured. What needs only the service's URL (warm-up, ab, the ``/metrics`` scrapes:
:func:`load_with_stages`) takes any perf.endpoint.Endpoint, so it also measures a service already running
(``--target``, perf/target).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from model_serving.docker.archive import tar_bytes
from model_serving.docker.containers import RunningService, run_service
from model_serving.load.ab_parser import LoadOutcome
from model_serving.load.ab_runner import run_ab
from model_serving.load.stats_sampler import ResourceSamples, memory_now, sample_resources
from model_serving.load.thread_sampler import ThreadsUnavailable, container_threads
from model_serving.metrics.prometheus import Scrape, parse_scrape, stage_figures
from model_serving.metrics.thread_cpu import ThreadCpu, ThreadTime, cpu_per_request
from model_serving.perf.endpoint import Endpoint
from model_serving.services import SERVICES

log = logging.getLogger(__name__)

_BENCH_IMAGE_PATH = "/bench-payload.jpg"
# The bench of a service that serves the optimized graph also times its two halves (artifacts.SPLIT_FILES),
# copied in for it.
SPLIT_BENCH_SERVICES = tuple(name for name, spec in SERVICES.items() if "onnx_optimized" in spec.model_roles)
_BENCH_SPLIT_PATHS = ("/bench-preprocess.onnx", "/bench-network.onnx")
# Let in-flight work, freed buffers and the engine's counters settle before memory is read at rest.
_SETTLE_S = 2.0


class MeasurementError(Exception):
    pass


StageFigures = dict[str, dict[str, float | int | None]]


@dataclass
class StagedRun:
    """An ab run and what the service's ``/metrics`` counted over it (the difference of two scrapes)."""

    outcome: LoadOutcome
    stages_ms: StageFigures = field(default_factory=dict)
    responses: dict[str, float] = field(default_factory=dict)


@dataclass
class LoadMeasurement:
    outcome: LoadOutcome
    resources: ResourceSamples
    health: dict[str, Any]
    in_process_rps: float | None = None
    in_process_detail: dict[str, Any] = field(default_factory=dict)
    stages_ms: StageFigures = field(default_factory=dict)
    responses: dict[str, float] = field(default_factory=dict)
    at_c1: StagedRun | None = None
    #: CPU per request by thread over the load run; None with ``thread_cpu_unavailable`` saying why.
    thread_cpu: ThreadCpu | None = None
    thread_cpu_unavailable: str | None = None


@dataclass
class MemoryOverRequests:
    """Memory at rest (MB) after warm-up and after each batch of a long run: (requests served so far, MB)."""

    points: list[tuple[int, float]] = field(default_factory=list)
    failure: str | None = None


class ServiceStarter:
    """Start-ups as rounds: ``start`` times one fresh container to its first 200, ``stop`` removes it."""

    def __init__(self, service: str, image: str, cpus: float) -> None:
        self.service, self.image, self.cpus = service, image, cpus
        self.samples: list[float] = []
        self.container_ids: list[str] = []
        self._stack: ExitStack | None = None

    def start(self) -> None:
        self.stop()
        self._stack = ExitStack()
        # run_service returns only once GET / answered 200 (else it raises): each sample is a start that got there.
        running = self._stack.enter_context(run_service(self.service, self.image, self.cpus))
        self.samples.append(running.startup_s)
        self.container_ids.append(running.container_id)

    def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()

    def problems(self, runs: int, timed_s: Sequence[float] | None = None) -> list[str]:
        """What is wrong with the start-ups taken, ``runs`` having been asked for (empty: nothing): one sample per
        run, each from a container of its own, positive and finite, and (given ``timed_s``, the timings of the
        ``start`` calls) no longer than the call that took it."""
        found = []
        if len(self.samples) != runs:
            found.append(f"{len(self.samples)} start-ups for {runs} runs")
        if len(set(self.container_ids)) != len(self.samples):
            found.append(f"{len(set(self.container_ids))} distinct containers for {len(self.samples)} start-ups")
        if bad := [s for s in self.samples if not (math.isfinite(s) and s > 0)]:
            found.append(f"start-up times that are not positive and finite: {bad}")
        if timed_s is not None:
            if len(timed_s) != len(self.samples):
                found.append(f"{len(timed_s)} timed calls for {len(self.samples)} start-ups")
            if longer := [(s, t) for s, t in zip(self.samples, timed_s, strict=False) if s > t]:
                found.append(f"start-ups longer than the call that took them (start-up, call): {longer}")
        return found


def warm_up(service: Endpoint, body: bytes, requests: int) -> None:
    with httpx.Client(timeout=120) as client:
        for _ in range(requests):
            response = client.post(
                f"{service.base_url}/predict/", content=body, headers={"content-type": "application/json"}
            )
            if response.status_code != 200:
                raise MeasurementError(
                    f"{service.service} answered {response.status_code} to the benchmark payload during warm-up: "
                    f"{response.text[:300]}"
                )


def warm_up_at_concurrency(service: Endpoint, body_path: Path, concurrency: int) -> None:
    """An unmeasured ab run at the measured run's concurrency (2 × c requests): the first run at c=50 after a
    fresh start also pays for the working set of 50 connections (buffers, heap growth, page faults); rust-onnx-
    serving measured 112 req/s without this and 122 with it (2026-12-02, fresh containers, interleaved)."""
    outcome = run_ab(
        f"{service.base_url}/predict/", body_path, 2 * concurrency, concurrency, service.service, quiet=True
    )
    if not outcome.ok:
        raise MeasurementError(f"{service.service}: the warm-up at c={concurrency} failed: {outcome.failure}")


def _copy_into(service: RunningService, files: dict[str, bytes]) -> None:
    archive = tar_bytes({path.lstrip("/"): data for path, data in files.items()})
    service.container.get_wrapped_container().put_archive("/", archive)


def scrape(service: Endpoint) -> Scrape:
    """The service's own figures from ``GET /metrics``."""
    response = httpx.get(f"{service.base_url}/metrics", timeout=30)
    if response.status_code != 200:
        raise MeasurementError(f"{service.service}: GET /metrics answered {response.status_code}")
    return parse_scrape(response.text, service.service)


def staged_ab(service: Endpoint, body_path: Path, requests: int, concurrency: int) -> StagedRun:
    """ab between two scrapes of ``/metrics``: the stages of exactly the run's requests."""
    before = scrape(service)
    outcome = run_ab(f"{service.base_url}/predict/", body_path, requests, concurrency, service.service)
    run = scrape(service).minus(before)
    return StagedRun(outcome, stage_figures(run), dict(run.responses))


def bench_figures(stdout: str) -> dict[str, Any]:
    """What a bench printed (serving_common.bench, the Rust binary's --bench): its last line, a JSON object."""
    lines = stdout.strip().splitlines()
    if not lines:
        raise MeasurementError("the in-process bench printed nothing")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def in_process_rate(
    service: RunningService, jpeg: bytes, seconds: float, split: tuple[bytes, bytes] | None = None
) -> dict[str, Any]:
    """Run the service's own request path (parse, decode, predict) inside its container (same CPU limit), one
    thread, each stage timed; with ``split`` (the graph's two halves) ONNX's preprocessing and network apart."""
    files = {_BENCH_IMAGE_PATH: jpeg}
    command = [*SERVICES[service.service].bench_command, _BENCH_IMAGE_PATH, str(seconds)]
    if split is not None and service.service in SPLIT_BENCH_SERVICES:
        files.update(zip(_BENCH_SPLIT_PATHS, split, strict=True))
        command += _BENCH_SPLIT_PATHS
    _copy_into(service, files)
    result = service.container.get_wrapped_container().exec_run(
        command, environment={"THREADS": "1", "WORKERS": "1"}, demux=True
    )
    stdout, stderr = (part.decode(errors="replace") if part else "" for part in result.output)
    if result.exit_code != 0:
        raise MeasurementError(f"in-process bench in {service.service} failed ({result.exit_code}): {stderr[-500:]}")
    figures = bench_figures(stdout)
    figures["rps"] = figures["iterations"] / figures["seconds"]
    return figures


def load_with_stages(
    service: Endpoint,
    body_path: Path,
    requests: int,
    concurrency: int,
    warmup_requests: int,
    requests_c1: int = 0,
    sampling: Callable[[], AbstractContextManager[ResourceSamples]] | None = None,
) -> LoadMeasurement:
    """What needs only the service's URL: its ``GET /``, warm-up, ab with its stages scraped from ``/metrics``
    (``sampling`` collects resources around the run: none without it; CPU per thread where the suite started the
    service), then a short run at c=1."""
    health = httpx.get(f"{service.base_url}/", timeout=10).json()
    log.info(
        f"{service.service}: warming up with {warmup_requests} requests, then {2 * concurrency} at c={concurrency}"
    )
    warm_up(service, body_path.read_bytes(), warmup_requests)
    warm_up_at_concurrency(service, body_path, concurrency)
    with (sampling or (lambda: nullcontext(ResourceSamples())))() as resources:
        loaded, thread_cpu, unavailable = thread_cpu_over(
            service_threads(service),
            lambda: staged_ab(service, body_path, requests, concurrency),
            lambda staged: staged.outcome,
        )
    measurement = LoadMeasurement(
        loaded.outcome,
        resources,
        health,
        stages_ms=loaded.stages_ms,
        responses=loaded.responses,
        thread_cpu=thread_cpu,
        thread_cpu_unavailable=unavailable,
    )
    if loaded.outcome.ok and requests_c1 > 0:
        log.info(f"{service.service}: {requests_c1} requests at c=1, for where the time goes")
        measurement.at_c1 = staged_ab(service, body_path, requests_c1, 1)
    return measurement


ThreadReader = Callable[[], dict[int, ThreadTime]]
Run = TypeVar("Run")


def service_threads(service: Endpoint) -> ThreadReader | None:
    """How to read the threads of a service the suite started; None for one it did not (``--target``)."""
    if not isinstance(service, RunningService):
        return None
    container = service.container.get_wrapped_container()
    return lambda: container_threads(container)


def thread_cpu_over(
    read: ThreadReader | None, run: Callable[[], Run], outcome_of: Callable[[Run], LoadOutcome]
) -> tuple[Run, ThreadCpu | None, str | None]:
    """``run`` between two readings of the threads: what it gave, its CPU per request by thread (None when not
    read, or when the run failed) and why the threads could not be read (None when they could, or were not asked)."""
    try:
        before = read() if read is not None else None
    except ThreadsUnavailable as error:
        return run(), None, str(error)
    result = run()
    outcome = outcome_of(result)
    if read is None or before is None or not outcome.ok or outcome.report is None:
        return result, None, None
    try:
        return result, cpu_per_request(before, read(), outcome.report.complete), None
    except ThreadsUnavailable as error:
        return result, None, str(error)


def measure_load(
    service: str,
    image: str,
    cpus: float,
    body_path: Path,
    jpeg: bytes,
    requests: int,
    concurrency: int,
    warmup_requests: int,
    in_process_seconds: float,
    requests_c1: int = 0,
    split: tuple[bytes, bytes] | None = None,
) -> LoadMeasurement:
    """One container: warm-up, ab with resources sampled and stages scraped, a short run at c=1, then the
    in-process limit and stages in the same container."""
    with run_service(service, image, cpus) as running:
        container = running.container.get_wrapped_container()
        measurement = load_with_stages(
            running,
            body_path,
            requests,
            concurrency,
            warmup_requests,
            requests_c1,
            lambda: sample_resources(container),
        )
        if not measurement.outcome.ok:
            return measurement
        log.info(f"{service}: in-process limit and stages, one thread, {in_process_seconds:.0f} s")
        detail = in_process_rate(running, jpeg, in_process_seconds, split)
        measurement.in_process_rps, measurement.in_process_detail = detail["rps"], detail
    return measurement


def measure_memory_over_requests(
    service: str,
    image: str,
    cpus: float,
    body_path: Path,
    requests: int,
    batches: int,
    concurrency: int,
    warmup_requests: int,
) -> MemoryOverRequests:
    """One container: warm-up, then ``requests`` in ``batches`` ab runs, memory read at rest after each.

    Memory grows in the first batch as the working set for ``concurrency`` clients is allocated; after that,
    a service that does not leak stays flat, whatever the number of requests.
    """
    result = MemoryOverRequests()
    served = 0
    with run_service(service, image, cpus) as running:
        container = running.container.get_wrapped_container()
        warm_up(running, body_path.read_bytes(), warmup_requests)
        served += warmup_requests
        for batch in range(batches + 1):
            time.sleep(_SETTLE_S)
            memory = memory_now(container)
            if memory is None:
                result.failure = f"{service}: the engine reported no memory usage"
                return result
            result.points.append((served, round(memory, 1)))
            log.info(f"{service}: {memory:.1f} MB at rest after {served} requests")
            if batch == batches:
                break
            size = requests // batches + (1 if batch < requests % batches else 0)
            outcome = run_ab(f"{running.base_url}/predict/", body_path, size, concurrency, service)
            if not outcome.ok:
                result.failure = outcome.failure
                return result
            served += size
    return result
