"""The HTTP API both Python services serve (DESIGN §5); each service supplies only its predictor."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving_common.config import Settings
from serving_common.decoding import decode_rgb
from serving_common.errors import ApiError, gateway_timeout, too_large, unsupported_media_type
from serving_common.manifest import read_manifest
from serving_common.metrics import STAGES_KEY, PredictMetricsMiddleware, ServiceMetrics
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
    limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(1))

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

        def run(deadline: float) -> tuple[int, np.ndarray]:
            stages.ns["queue"] = time.perf_counter_ns() - submitted  # waiting for this worker's processing slot
            return self.predict(body, deadline, stages)

        try:
            with anyio.fail_after(timeout):
                return await anyio.to_thread.run_sync(
                    run, time.monotonic() + timeout, abandon_on_cancel=True, limiter=self.limiter
                )
        except TimeoutError:
            raise _timed_out(timeout) from None


def describe_validation_error(error: RequestValidationError) -> str:
    """One sentence per problem, as rust-onnx-serving words them."""
    parts = []
    for problem in error.errors():
        location = tuple(str(part) for part in problem.get("loc", ()))
        if location == ("query", "probabilities"):
            parts.append(
                "query parameter 'probabilities' must be a boolean (true/false, 1/0, yes/no, on/off), "
                f"got {problem.get('input')!r}"
            )
        else:
            parts.append(f"{' '.join(location)}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


def _timed_out(timeout: float) -> ApiError:
    return gateway_timeout(f"the request took longer than REQUEST_TIMEOUT_S ({timeout:g} s) to process")


def _check_deadline(deadline: float | None, timeout: float) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise _timed_out(timeout)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"request body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise too_large(f"request body exceeds the limit of {limit} bytes")
    return b"".join(chunks)  # one copy of the body (the join of a lone chunk is that chunk)


def _require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise unsupported_media_type(f"content type must be application/json, got {media_type or 'none'}")


def create_app(name: str, load_predictor: Callable[[Settings, dict[str, Any]], Predictor], port: int) -> FastAPI:
    """A FastAPI app that loads its model at start-up (failing the start on a bad model) and serves it."""
    state: dict[str, Service] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        settings = Settings.from_env(default_port=port)
        manifest = read_manifest(settings.model_dir)
        state["service"] = Service(name, settings, manifest, load_predictor(settings, manifest))
        log.info("%s ready: model_id %s", name, manifest["model_id"])
        yield
        state.clear()

    app = FastAPI(title=name, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    # Made with the app, in each worker: the launcher has chosen prometheus_client's mode by then.
    metrics = ServiceMetrics(name)
    app.add_middleware(PredictMetricsMiddleware, metrics=metrics)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422 (only the query can fail: the body is read by hand) says it in a list; the contract
        # is one string.
        return JSONResponse({"detail": describe_validation_error(error)}, status_code=422)

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

    @app.post("/predict/")
    async def predict(request: Request, probabilities: bool = False) -> JSONResponse:
        service = state["service"]
        _require_json(request)
        body = await _read_body(request, service.settings.max_body_bytes)
        index, probs = await service.predict_within_timeout(body, request.scope.get(STAGES_KEY))
        response: dict[str, Any] = {"prediction": service.manifest["classes"][index]}
        if probabilities:
            response["probabilities"] = [float(p) for p in probs]
        # A response, not a dict: FastAPI would validate the dict against the return type and encode it again.
        return JSONResponse(response)

    return app
