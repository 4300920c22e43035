"""The HTTP API both Python services serve (DESIGN §5); each service supplies only its predictor."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving_common.config import Settings
from serving_common.decoding import decode_rgb
from serving_common.errors import ApiError, too_large, unsupported_media_type
from serving_common.manifest import read_manifest
from serving_common.request import parse_predict_body

log = logging.getLogger("serving")


class Predictor(Protocol):
    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """RGB uint8 ``H×W×3`` → probabilities in class order."""
        ...


@dataclass(frozen=True)
class Service:
    name: str
    settings: Settings
    manifest: dict[str, Any]
    predictor: Predictor

    def predict(self, body: bytes) -> tuple[int, np.ndarray]:
        pixels = decode_rgb(parse_predict_body(body), max_pixels=self.settings.max_pixels)
        probabilities = self.predictor.probabilities(pixels)
        # argmax takes the lowest index on a tie, as the contract says.
        return int(np.argmax(probabilities)), probabilities


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"request body is {declared} bytes; the limit is {limit}")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > limit:
            raise too_large(f"request body exceeds the limit of {limit} bytes")
    return bytes(chunks)


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

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

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

    @app.post("/predict/")
    async def predict(request: Request, probabilities: bool = False) -> dict[str, Any]:
        service = state["service"]
        _require_json(request)
        body = await _read_body(request, service.settings.max_body_bytes)
        index, probs = await run_in_threadpool(service.predict, body)
        response: dict[str, Any] = {"prediction": service.manifest["classes"][index]}
        if probabilities:
            response["probabilities"] = [float(p) for p in probs]
        return response

    return app
