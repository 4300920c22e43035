"""gunicorn, configured in Python, running uvicorn's worker class: the process manager of the Python services.

The master binds the port, forks ``workers`` processes and supervises them; each worker imports the app (and with
it torch or ONNX Runtime), loads the model in its lifespan and serves with uvicorn (uvloop, httptools). What the
services rely on, all gunicorn's own behaviour:

- a worker whose start-up fails exits with code 3 ("worker failed to boot"), and the master then stops the others
  and exits 3 too (uvicorn's own supervisor would exit 0);
- SIGTERM: the master closes its listening socket at once and sends SIGTERM to the workers, which stop accepting,
  finish their in-flight requests and exit; the master exits 0, killing any worker still busy after
  ``graceful_timeout``. SIGINT (Ctrl-C) is gunicorn's quick shutdown;
- nothing is written to the root filesystem: the workers' heartbeat files are made (and at once unlinked) in
  ``/dev/shm``, and gunicorn's control socket (it would live under ``$HOME``) is off.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.errors import HaltServer

#: uvicorn's worker class for gunicorn, from the uvicorn-worker package (``uvicorn.workers`` is deprecated).
WORKER_CLASS = "uvicorn_worker.UvicornWorker"
#: A tmpfs in every container, writable also with a read-only root filesystem.
HEARTBEAT_DIR = Path("/dev/shm")
#: A worker that has not told the master it is alive for this long is killed and replaced. Its heartbeat starts
#: only once it serves: importing torch and loading the model come first (seconds, several times more with several
#: workers starting on one busy CPU), and a worker killed mid-start would only start again. Requests do not stop
#: the heartbeat: they are processed off the event loop (serving_common.app).
WORKER_SILENT_S = 120
#: uvicorn's default, kept: how long an idle keep-alive connection stays open (gunicorn's default is 2 s).
KEEP_ALIVE_S = 5


class ServiceServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn serving ``load_app()``'s ASGI app on ``0.0.0.0:port`` with ``workers`` uvicorn workers."""

    def __init__(
        self,
        load_app: Callable[[], Any],
        *,
        port: int,
        workers: int,
        graceful_timeout_s: int,
        multiprocess_metrics: bool,
    ) -> None:
        self._load_app = load_app
        self._options: dict[str, Any] = {
            "bind": [f"0.0.0.0:{port}"],
            "workers": workers,
            "worker_class": WORKER_CLASS,
            "graceful_timeout": graceful_timeout_s,
            "timeout": WORKER_SILENT_S,
            "keepalive": KEEP_ALIVE_S,
            # The services log their own start (the configuration line, "<service> ready"); gunicorn's own
            # lines at warning and above, as uvicorn's were.
            "loglevel": "warning",
            "worker_tmp_dir": str(HEARTBEAT_DIR) if HEARTBEAT_DIR.is_dir() else None,
            "control_socket_disable": True,
        }
        if multiprocess_metrics:
            self._options["child_exit"] = _forget_worker_gauges
        super().__init__()

    def run(self) -> None:
        """Serve until stopped; the process then exits with gunicorn's code (in the master and in each worker)."""
        try:
            super().run()
        except HaltServer as halt:
            # gunicorn 27.0.1 halts on the first worker that failed to boot; when another one fails too while it
            # stops them, that raises again out of its halt, uncaught (a traceback and exit code 1). Same exit here.
            sys.exit(halt.exit_status)

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        """In each worker, after the fork: the app, imported there (the master imports no model library)."""
        return self._load_app()


def _forget_worker_gauges(_server: Any, worker: Any) -> None:
    """In the master, once a worker has exited: drop its live gauges (requests in flight) from the shared figures,
    as prometheus_client's multiprocess mode asks of its process manager."""
    from prometheus_client import multiprocess  # only here: the master serves no metrics of its own

    multiprocess.mark_process_dead(worker.pid)  # in the folder PROMETHEUS_MULTIPROC_DIR names
