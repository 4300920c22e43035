"""Start a service: read and log the configuration once, check the model, then serve with uvicorn.

Start-up: the manifest and the sha256 of the model file are checked here, before any worker starts; the model
itself is loaded by the app's lifespan in each worker. Whatever fails (missing, corrupt or mismatched model)
ends the process with exit code 3 and one line on stderr, ``<service>: cannot start: <what is wrong>``, instead
of uvicorn's traceback; with several workers the supervisor exits 3 too (uvicorn's would exit 0), and it checks
the model once itself first, so that a bad model fails in seconds rather than after every worker imported torch.

Metrics: several workers report one set of figures through prometheus_client's multiprocess mode (see
serving_common.metrics); its folder is made (or emptied) here and named in ``PROMETHEUS_MULTIPROC_DIR`` before any
worker imports prometheus_client, which picks its mode at import. One worker keeps its figures in its own memory.

Shutdown: SIGTERM (or SIGINT) stops accepting connections at once, lets in-flight requests finish (up to
``SHUTDOWN_TIMEOUT_S``) and exits 0, with one worker (uvicorn's server is PID 1) and with several (the
supervisor is PID 1: it closes its copy of the listening socket, so that new connections are refused instead
of queueing on a socket no worker accepts from, and signals the workers without uvicorn's 0.5 s polling delay).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import uvicorn
from uvicorn.importer import import_from_string
from uvicorn.supervisors.multiprocess import Multiprocess

from serving_common.config import MULTIPROC_ENV, SUPERVISOR_PID_ENV, Settings
from serving_common.manifest import ModelError, read_manifest, verify_files

SHUTDOWN_TIMEOUT_S = 30
CONFIG_ERROR = 2
STARTUP_FAILURE = 3  # also uvicorn's code for a worker that failed before serving


def _configure_logging() -> None:
    """The services' own log lines (e.g. ``<service> ready``), in this process or a worker (a no-op when done)."""
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
    config = _Config(
        app_path,
        service=name,
        host="0.0.0.0",
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_S,
    )
    if settings.workers == 1:
        return _serve_in_this_process(config)
    return _serve_with_workers(config)


class _Config(uvicorn.Config):
    """uvicorn's configuration plus the service name; loading the app guards its start-up (see module doc).

    Pickled into every worker process, where ``load`` runs.
    """

    def __init__(self, app: str, *, service: str, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.service = service

    def load(self) -> None:
        _configure_logging()
        super().load()
        guard_startup(import_from_string(self.app), self.service)


def guard_startup(app: Any, service: str) -> None:
    """Make the app's lifespan start-up end the process with ``STARTUP_FAILURE`` and one line naming the problem."""
    router = getattr(app, "router", None)
    lifespan = getattr(router, "lifespan_context", None)
    if lifespan is None or getattr(lifespan, "guarded", False):
        return

    @asynccontextmanager
    async def guarded(target: Any) -> AsyncIterator[Any]:
        async with AsyncExitStack() as stack:
            try:
                state = await stack.enter_async_context(lifespan(target))
            except Exception as error:
                _startup_failed(service, error)
            yield state

    guarded.guarded = True  # type: ignore[attr-defined]
    router.lifespan_context = guarded


def _startup_failed(service: str, error: BaseException) -> NoReturn:
    if isinstance(error, ModelError):
        detail = str(error)
    else:  # not anticipated: keep the traceback
        traceback.print_exception(error)
        detail = f"{type(error).__name__}: {error}"
    print(f"{service}: cannot start: {detail}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Not SystemExit: Starlette and uvicorn would catch it, log a traceback and, with workers, the supervisor
    # would still exit 0.
    os._exit(STARTUP_FAILURE)


def _prepare_metrics_dir(folder: Path) -> None:
    """Create the folder, or empty it of an earlier run's files, and name it for prometheus_client."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in folder.glob("*.db"):
        path.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)


def _serve_in_this_process(config: _Config) -> int:
    # uvicorn re-raises the signal that stopped it once it has shut down; with the default handler that would
    # end the process with -SIGTERM rather than 0 wherever it is not PID 1 (e.g. under `docker run --init`).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.Server(config).run()
    return 0


def _serve_with_workers(config: _Config) -> int:
    # Check the model once here (the app's own start-up, then its shutdown): a bad one fails now, in one line,
    # rather than in every worker after its imports.
    app = import_from_string(config.app)
    guard_startup(app, config.service)

    async def check() -> None:
        async with app.router.lifespan_context(app):
            pass

    service_log = logging.getLogger("serving")
    service_log.disabled = True  # its "ready" line is for the workers to log
    try:
        asyncio.run(check())
    finally:
        service_log.disabled = False
    _return_freed_memory()
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())  # its memory and CPU are the service's too (/metrics)
    supervisor = _Supervisor(config, sockets=[config.bind_socket()])
    supervisor.run()
    return STARTUP_FAILURE if supervisor.failed_to_start else 0


def _return_freed_memory() -> None:
    """Give the heap the model check freed back to the system (glibc keeps it): ~10 MB less for the supervisor."""
    gc.collect()
    with suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL(None).malloc_trim(0)


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor; on SIGTERM/SIGINT it stops at once and closes its listening socket."""

    def __init__(self, config: uvicorn.Config, sockets: list[Any]) -> None:
        super().__init__(config, sockets)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)

    def _stop(self, _sig: int, _frame: FrameType | None) -> None:
        # The workers hold their own copies of the socket and close them once they stop accepting.
        for sock in self.sockets:
            sock.close()
        self.should_exit.set()

    @property
    def failed_to_start(self) -> bool:
        return any(process.exitcode == STARTUP_FAILURE for process in self.processes)
