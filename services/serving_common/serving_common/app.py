"""The HTTP API both Python services serve (DESIGN §5); each service supplies only its predictor."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from model_core.manifest import read_manifest
from serving_common.config import Settings
from serving_common.decoding import decode_rgb
from serving_common.errors import ApiError, gateway_timeout
from serving_common.metrics import PredictMetricsMiddleware, ServiceMetrics
from serving_common.predict_route import PREDICT_PATH, PREDICT_PATHS, PredictRoute, Receive, Scope, Send, send_json
from serving_common.request import parse_predict_body
from serving_common.stages import StageTimes

log = logging.getLogger("serving")


class Predictor(Protocol):
    def probabilities(self, pixels: np.ndarray, stages: StageTimes | None = None) -> np.ndarray:
        """RGB uint8 ``H×W×3`` → probabilities in class order; the runtime's stages are timed into ``stages``
        (``preprocess`` and ``model`` where they run apart, else ``inference``)."""
        ...


@dataclass(frozen=True)
class Service:
    name: str
    settings: Settings
    manifest: dict[str, Any]
    predictor: Predictor
    #: One request in processing per worker process, as in rust-onnx-serving's inference pool: the others wait
    #: their turn holding only their body. Without it, up to 40 threads (anyio's default) each hold a decoded
    #: image and inference buffers at once: at c=50 that was 0.6–1 GB and still growing after 10,000 requests.
    #: A one-thread executor rather than anyio's thread pool behind a capacity limiter: the same order and
    #: limit for less of the event loop's time (1.32 → 1.18 ms of CPU a request, x1.025 [1.003, 1.048] req/s;
    #: onnx-serving, 8 interleaved rounds of ab -n 300 -c 50, 1 CPU, 2026-12-05).
    #: Its thread is named ``predict`` for the system too, so that top, perf and the harness's CPU per thread
    #: (its metrics.thread_cpu) tell it from the event loop.
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="predict", initializer=name_os_thread, initargs=("predict",)
        )
    )

    def predict(
        self, body: bytes, deadline: float | None = None, stages: StageTimes | None = None
    ) -> tuple[int, np.ndarray]:
        """Parse, decode, classify, each stage timed into ``stages``; past ``deadline`` (``time.monotonic()``) the
        next step is not started."""
        stages = stages if stages is not None else StageTimes()
        _check_deadline(deadline, self.settings.request_timeout_s)
        with stages.timing("parse"):
            data = parse_predict_body(body)
        _check_deadline(deadline, self.settings.request_timeout_s)
        with stages.timing("decode"):
            pixels = decode_rgb(data, max_pixels=self.settings.max_pixels)
        del data
        _check_deadline(deadline, self.settings.request_timeout_s)
        probabilities = self.predictor.probabilities(pixels, stages)
        # argmax takes the lowest index on a tie, as the contract says.
        return int(np.argmax(probabilities)), probabilities

    async def predict_within_timeout(self, body: bytes, stages: StageTimes | None = None) -> tuple[int, np.ndarray]:
        """:meth:`predict` in a worker thread, one at a time, answered 504 once the request has waited and run for
        longer than ``REQUEST_TIMEOUT_S``.

        A thread cannot be cancelled: on a timeout the request is answered at once and the thread is abandoned;
        it stops before its next step (parse → decode → inference), but a step under way (a decode, an
        inference) runs to its end and keeps its CPU until then.
        """
        timeout = self.settings.request_timeout_s
        stages = stages if stages is not None else StageTimes()
        submitted = time.perf_counter_ns()
        deadline = time.monotonic() + timeout

        def run() -> tuple[int, np.ndarray]:
            stages.ns["queue"] = time.perf_counter_ns() - submitted  # waiting for this worker's processing slot
            return self.predict(body, deadline, stages)

        # Cancelled at the timeout, a request still waiting for the thread never runs; one under way runs on.
        future = asyncio.get_running_loop().run_in_executor(self.executor, run)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise _timed_out(timeout) from None


def name_os_thread(name: str) -> None:
    """Name the calling thread as the kernel shows it (``/proc/…/comm``, 15 bytes); Python 3.11 names only its own
    ``Thread`` object. Nothing happens where there is no ``prctl`` (not Linux)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def _timed_out(timeout: float) -> ApiError:
    return gateway_timeout(f"the request took longer than REQUEST_TIMEOUT_S ({timeout:g} s) to process")


def _check_deadline(deadline: float | None, timeout: float) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise _timed_out(timeout)


class ServiceApp(FastAPI):
    """FastAPI, with ``/predict/`` and ``/predict`` (one endpoint, ``docs/contract.md`` §1) timed by the metrics
    middleware and answered without going through FastAPI's stack: ``POST`` by
    :class:`~serving_common.predict_route.PredictRoute` (see there why), any other method 405. Other paths are
    FastAPI's, without its slash redirects: a path that is not served is a 404."""

    def __init__(self, predict: PredictRoute, metrics: ServiceMetrics, **options: Any) -> None:
        super().__init__(**options)
        self.router.redirect_slashes = False
        self._predict = predict
        self._timed_predict = PredictMetricsMiddleware(self._dispatch_predict, metrics=metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in PREDICT_PATHS:
            # One endpoint under its one name, for the middleware and the metrics.
            await self._timed_predict({**scope, "path": PREDICT_PATH}, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _dispatch_predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            await self._predict(scope, receive, send)
        else:
            await send_json(send, 405, {"detail": "Method Not Allowed"}, headers=[(b"allow", b"POST")])


def create_app(name: str, load_predictor: Callable[[Settings, dict[str, Any]], Predictor], port: int) -> ServiceApp:
    """A FastAPI app that loads its model at start-up (failing the start on a bad model) and serves it."""
    state: dict[str, Service] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        settings = Settings.from_env(default_port=port)
        manifest = read_manifest(settings.model_dir)
        service = state["service"] = Service(name, settings, manifest, load_predictor(settings, manifest))
        log.info("%s ready: model_id %s", name, manifest["model_id"])
        yield
        service.executor.shutdown(wait=False, cancel_futures=True)
        state.clear()

    # Made with the app, in each worker: the launcher has chosen prometheus_client's mode by then.
    metrics = ServiceMetrics(name)
    app = ServiceApp(
        PredictRoute(lambda: state["service"]),
        metrics,
        title=name,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.get("/")
    async def health() -> dict[str, Any]:
        service = state["service"]
        return {
            "status": "healthy",
            "message": f"{service.name} is serving {service.manifest['architecture']}",
            "service": service.name,
            "model_id": service.manifest["model_id"],
            "workers": service.settings.workers,
            "threads": service.settings.threads,
        }

    @app.get("/metrics")
    async def metrics_text() -> Response:
        # On the event loop, never behind the processing slot: it answers while every request waits for that.
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return app
