"""Start a service: read and log the configuration once, check the model, then run uvicorn."""

from __future__ import annotations

import json
import logging
import sys

import uvicorn

from serving_common.config import Settings
from serving_common.manifest import ModelError, read_manifest, verify_files


def main(name: str, app_path: str, default_port: int, model_roles: tuple[str, ...]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(default_port)
    except ValueError as error:
        print(f"{name}: configuration error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"service": name, "config": settings.describe()}), flush=True)
    # Fail fast, before workers start, on a missing, corrupt or mismatched model.
    try:
        verify_files(settings.model_dir, read_manifest(settings.model_dir), model_roles)
    except ModelError as error:
        print(f"{name}: cannot start: {error}", file=sys.stderr)
        return 3
    uvicorn.run(
        app_path,
        host="0.0.0.0",
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        timeout_graceful_shutdown=30,
    )
    return 0
