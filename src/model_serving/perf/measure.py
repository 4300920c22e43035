"""Measuring one service: start-ups, an ab load run with memory and CPU sampled, and the in-process limit.

Each measurement starts its own container(s) under the CPU limit and removes them; nothing else runs beside
the service while it is measured.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from model_serving.docker.archive import tar_bytes
from model_serving.docker.containers import RunningService, run_service
from model_serving.load.ab_parser import LoadOutcome
from model_serving.load.ab_runner import run_ab
from model_serving.load.stats_sampler import ResourceSamples, memory_now, sample_resources

Progress = Callable[[str], None]

# The same decode-and-predict path each service runs, without HTTP (serving_common.bench, the binary's --bench).
BENCH_COMMANDS: dict[str, list[str]] = {
    "torch-serving": ["python", "-m", "serving_common.bench", "torch_serving.predictor:TorchPredictor"],
    "onnx-serving": ["python", "-m", "serving_common.bench", "onnx_serving.predictor:OnnxPredictor"],
    "rust-onnx-serving": ["/rust-onnx-serving", "--bench"],
}
_BENCH_IMAGE_PATH = "/bench-payload.jpg"
# Let in-flight work, freed buffers and the engine's counters settle before memory is read at rest.
_SETTLE_S = 2.0


class MeasurementError(Exception):
    pass


@dataclass
class LoadMeasurement:
    outcome: LoadOutcome
    resources: ResourceSamples
    health: dict[str, Any]
    in_process_rps: float | None = None
    in_process_detail: dict[str, Any] = field(default_factory=dict)


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
        self._stack: ExitStack | None = None

    def start(self) -> None:
        self.stop()
        self._stack = ExitStack()
        running = self._stack.enter_context(run_service(self.service, self.image, self.cpus))
        self.samples.append(running.startup_s)

    def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()


def _warm_up(service: RunningService, body: bytes, requests: int) -> None:
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


def _copy_into(service: RunningService, data: bytes, path: str) -> None:
    service.container.get_wrapped_container().put_archive("/", tar_bytes({path.lstrip("/"): data}))


def in_process_rate(service: RunningService, jpeg: bytes, seconds: float) -> dict[str, Any]:
    """Run the service's own decode-and-predict loop inside its container (same CPU limit), one thread."""
    _copy_into(service, jpeg, _BENCH_IMAGE_PATH)
    command = [*BENCH_COMMANDS[service.service], _BENCH_IMAGE_PATH, str(seconds)]
    result = service.container.get_wrapped_container().exec_run(
        command, environment={"THREADS": "1", "WORKERS": "1"}, demux=True
    )
    stdout, stderr = (part.decode(errors="replace") if part else "" for part in result.output)
    if result.exit_code != 0:
        raise MeasurementError(f"in-process bench in {service.service} failed ({result.exit_code}): {stderr[-500:]}")
    figures: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    figures["rps"] = figures["iterations"] / figures["seconds"]
    return figures


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
    progress: Progress,
) -> LoadMeasurement:
    """One container: warm-up, ab with resources sampled, then the in-process limit in the same container."""
    with run_service(service, image, cpus) as running:
        health = httpx.get(f"{running.base_url}/", timeout=10).json()
        progress(f"{service}: warming up with {warmup_requests} requests")
        _warm_up(running, body_path.read_bytes(), warmup_requests)
        with sample_resources(running.container.get_wrapped_container()) as resources:
            outcome = run_ab(f"{running.base_url}/predict/", body_path, requests, concurrency, service, progress)
        measurement = LoadMeasurement(outcome, resources, health)
        if outcome.ok:
            progress(f"{service}: in-process limit, one thread, {in_process_seconds:.0f} s")
            detail = in_process_rate(running, jpeg, in_process_seconds)
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
    progress: Progress,
) -> MemoryOverRequests:
    """One container: warm-up, then ``requests`` in ``batches`` ab runs, memory read at rest after each.

    Memory grows in the first batch as the working set for ``concurrency`` clients is allocated; after that,
    a service that does not leak stays flat, whatever the number of requests.
    """
    result = MemoryOverRequests()
    served = 0
    with run_service(service, image, cpus) as running:
        container = running.container.get_wrapped_container()
        _warm_up(running, body_path.read_bytes(), warmup_requests)
        served += warmup_requests
        for batch in range(batches + 1):
            time.sleep(_SETTLE_S)
            memory = memory_now(container)
            if memory is None:
                result.failure = f"{service}: the engine reported no memory usage"
                return result
            result.points.append((served, round(memory, 1)))
            progress(f"{service}: {memory:.1f} MB at rest after {served} requests")
            if batch == batches:
                break
            size = requests // batches + (1 if batch < requests % batches else 0)
            outcome = run_ab(f"{running.base_url}/predict/", body_path, size, concurrency, service, progress)
            if not outcome.ok:
                result.failure = outcome.failure
                return result
            served += size
    return result
