"""``GET /metrics`` of the Python services: Prometheus text format through ``prometheus_client``.

Several uvicorn workers report one set of figures through prometheus_client's multiprocess mode: each worker
writes its values to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` and whichever worker answers a scrape
merges them all. The launcher sets that variable (default ``/dev/shm/model-serving-metrics``: Docker and Kubernetes
give every container a writable ``/dev/shm`` tmpfs, also with a read-only root filesystem) before any worker
imports prometheus_client, which decides the mode at import. Without it (an app run in-process, in tests) the
figures live in this process's own registry.

``model_serving_requests_total`` and the ``total`` stage count every response to ``/predict/`` (errors included) and
nothing else, so N predictions raise them by exactly N whatever else is asked of the service.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from serving_common.config import MULTIPROC_ENV, SUPERVISOR_PID_ENV
from serving_common.stages import STAGES, StageTimes, server_timing

#: Upper bounds in seconds, 10 a decade from 0.1 ms to 30 s; rust-onnx-serving has the same list (src/metrics.rs).
# fmt: off
STAGE_BUCKETS: tuple[float, ...] = (
    0.0001, 0.000125, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.0006, 0.0008,
    0.001, 0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.008,
    0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08,
    0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8,
    1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 12.5, 15.0, 20.0, 25.0, 30.0,
)
# fmt: on

_PID_IN_FILE_NAME = re.compile(r"_(\d+)\.db$")
#: Where the middleware leaves the request's :class:`StageTimes` for the handler to fill in.
STAGES_KEY = "serving.stages"


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


class ServiceMetrics:
    """The service's metrics: stage histograms, responses by status code, requests in flight."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self._multiprocess = multiprocess_dir()
        self.stage_seconds = Histogram(
            "model_serving_stage_seconds",
            "Time a /predict/ request spent in each stage: queue, parse, decode, preprocess, model or inference, total",
            ["service", "stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "model_serving_requests",
            "Responses to /predict/ by HTTP status code, errors included",
            ["service", "code"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "model_serving_requests_in_flight",
            "/predict/ requests being handled",
            ["service"],
            registry=self.registry,
            multiprocess_mode="livesum",
        ).labels(service)
        self._stages = {stage: self.stage_seconds.labels(service, stage) for stage in STAGES}
        if self._multiprocess is None:
            ProcessCollector(registry=self.registry)

    def observe(self, stage_seconds: dict[str, float]) -> None:
        for stage, seconds in stage_seconds.items():
            self._stages[stage].observe(seconds)

    def count_response(self, status: int) -> None:
        self.requests.labels(self.service, str(status)).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition of every worker's figures, and its content type."""
        if self._multiprocess is None:
            return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self._multiprocess))
        registry.register(_ServiceProcesses(self._multiprocess))
        return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4


class _ServiceProcesses(Collector):
    """prometheus_client's process metrics (memory, CPU, file descriptors) for every process of the service, one
    series each, labelled with its ``pid``: this worker, the other workers (they own files in the multiprocess
    folder) and their supervisor."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _pids(self) -> list[int]:
        pids = {os.getpid()}
        supervisor = os.environ.get(SUPERVISOR_PID_ENV, "")
        if supervisor.isdigit():
            pids.add(int(supervisor))
        for path in self.folder.glob("*.db"):
            if match := _PID_IN_FILE_NAME.search(path.name):
                pids.add(int(match.group(1)))
        return sorted(pid for pid in pids if Path(f"/proc/{pid}").is_dir())

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for pid in self._pids():
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                target = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                for sample in family.samples:
                    target.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from merged.values()


class PredictMetricsMiddleware:
    """ASGI middleware on ``/predict/``: requests in flight, ``total`` (received → answer handed over), responses by
    code, and the ``Server-Timing`` header from the stages the handler recorded in ``scope[STAGES_KEY]``."""

    def __init__(self, app: Any, metrics: ServiceMetrics, path: str = "/predict/") -> None:
        self.app, self.metrics, self.path = app, metrics, path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter_ns()
        stages = StageTimes()
        scope[STAGES_KEY] = stages
        status: int | None = None
        finished = False

        def done(code: int | None) -> None:
            """Once: observe and count the response (None: there was none), and leave the in-flight count."""
            nonlocal finished
            if finished:
                return
            finished = True
            if code is not None:
                self.metrics.observe({**stages.seconds(), "total": (time.perf_counter_ns() - started) / 1e9})
                self.metrics.count_response(code)
            self.metrics.in_flight.dec()

        async def timed_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                timing = server_timing({**stages.ns, "total": time.perf_counter_ns() - started})
                headers = [*message.get("headers", []), (b"server-timing", timing.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Before the last bytes go out: a client that scrapes right after its answer sees it counted.
                done(status)
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            done(status or 500)  # Starlette's outer error middleware answers 500 for what escapes here
            raise
        finally:
            done(status)  # a body cut short (the client went away) still counts; no answer at all does not
