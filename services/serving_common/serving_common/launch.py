"""Start a service: read and log the configuration once, check the model, then serve with gunicorn's uvicorn workers.

Start-up: the manifest and the sha256 of the model file (and the service's own quick check, e.g. torch-serving's
state-dict shapes) are checked here, before gunicorn starts and without importing the model's libraries; a bad
model ends the process in well under a second with exit code 3 and one line on stderr, ``<service>: cannot start:
<what is wrong>``. The model itself is loaded by the app's lifespan in each worker; what fails there (e.g. ONNX
Runtime refusing the file) is reported in the same line (serving_common.startup_guard), the worker exits 3 and
gunicorn with it (serving_common.server).

Metrics: several workers report one set of figures through prometheus_client's multiprocess mode (see
serving_common.metrics); its folder is made (or emptied) here and named in ``PROMETHEUS_MULTIPROC_DIR`` before any
worker imports prometheus_client, which picks its mode at import. One worker keeps its figures in its own memory.

Shutdown: SIGTERM stops accepting connections at once, lets in-flight requests finish (up to
``SHUTDOWN_TIMEOUT_S``) and exits 0, whatever the number of workers and whether or not the master is PID 1.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model_core.errors import ModelError
from model_core.manifest import read_manifest, verify_files
from serving_common.config import MULTIPROC_ENV, SUPERVISOR_PID_ENV, Settings
from serving_common.server import ServiceServer
from serving_common.startup_guard import StartupGuard

SHUTDOWN_TIMEOUT_S = 30
CONFIG_ERROR = 2
STARTUP_FAILURE = 3  # also gunicorn's, for a worker that failed to boot


def _configure_logging() -> None:
    """The services' own log lines (e.g. ``<service> ready``): set up here, in gunicorn's master, and inherited by
    the workers it forks (gunicorn configures only its own loggers and uvicorn's)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(
    name: str,
    app_path: str,
    default_port: int,
    model_roles: tuple[str, ...],
    check_model: Callable[[Path, dict[str, Any]], None] | None = None,
) -> int:
    """Serve ``app_path``; ``check_model(model_dir, manifest)`` is the service's own quick model check (it must
    not import the model's libraries: it runs so that a bad model is refused in seconds)."""
    _configure_logging()
    try:
        settings = Settings.from_env(default_port)
    except ValueError as error:
        print(f"{name}: configuration error: {error}", file=sys.stderr)
        return CONFIG_ERROR
    print(json.dumps({"service": name, "config": settings.describe()}), flush=True)
    try:
        if settings.workers > 1:
            _prepare_metrics_dir(settings.metrics_dir)
        else:
            # One process: prometheus_client's own values, cheaper than its memory-mapped files (0.08 ms less of
            # the event loop's CPU a request, onnx-serving at c=50, 2026-12-05).
            os.environ.pop(MULTIPROC_ENV, None)
    except OSError as error:
        print(
            f"{name}: configuration error: cannot use {settings.metrics_dir} for the metrics of the workers ({error}); "
            "set PROMETHEUS_MULTIPROC_DIR to a writable folder, e.g. on a tmpfs",
            file=sys.stderr,
        )
        return CONFIG_ERROR
    # Fail fast, before workers start, on a missing or corrupt model.
    try:
        manifest = read_manifest(settings.model_dir)
        verify_files(settings.model_dir, manifest, model_roles)
        if check_model is not None:
            check_model(settings.model_dir, manifest)
    except ModelError as error:
        print(f"{name}: cannot start: {error}", file=sys.stderr)
        return STARTUP_FAILURE
    if settings.workers > 1:
        os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())  # gunicorn's master: its memory and CPU count too (/metrics)
    server = ServiceServer(
        lambda: StartupGuard(_import_app(app_path), name),
        port=settings.port,
        workers=settings.workers,
        graceful_timeout_s=SHUTDOWN_TIMEOUT_S,
        multiprocess_metrics=settings.workers > 1,
    )
    # Exits the process itself: 0 after a shutdown, 3 when a worker failed to boot (in gunicorn's master; each
    # worker, forked inside this call, exits there too).
    server.run()
    return 0


def _import_app(app_path: str) -> Any:
    """``"package.module:attribute"`` → that attribute (in a worker, after the fork)."""
    module, _, attribute = app_path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _prepare_metrics_dir(folder: Path) -> None:
    """Create the folder, or empty it of an earlier run's files, and name it for prometheus_client."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in folder.glob("*.db"):
        path.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
