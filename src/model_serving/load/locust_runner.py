"""Running Locust distributed on this machine (one master, N workers on loopback) and judging the run.

Each run is bounded: Locust stops the users after ``run_time_s`` (letting the requests in flight finish, up to
``stop_timeout_s``), the master gives up when its workers do not connect within ``workers_wait_s``, and the
whole run is stopped when it outlasts all of that plus a margin. Every process is ended in a ``finally``. The
figures come from the master's CSV statistics (load/locust_parser), in the same form as ab's.

Workers on other machines are started by hand with the same locustfile (README, "Distributed load with
Locust"); the master counts them in (``remote_workers``) and waits for them like the local ones.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from model_serving.load.ab_parser import LoadOutcome
from model_serving.load.locust_parser import history_snapshot, judge_locust_run

log = logging.getLogger(__name__)

#: The locustfile shipped with the package (only Locust and the standard library: see its docstring).
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
#: Where each process that runs users reads the request body from (the locustfile's PAYLOAD_ENV).
PAYLOAD_ENV = "MODEL_SERVING_PAYLOAD"
# Beyond the run, the workers' wait and the stop timeout: Python start-up of three processes on a busy machine.
_WALL_CLOCK_MARGIN_S = 30.0
_PROGRESS_EVERY_S = 5.0
_POLL_S = 0.2


class LocustNotInstalled(RuntimeError):
    pass


@dataclass(frozen=True)
class LocustSpec:
    """One distributed run: ``users`` closed-loop users (= ab's concurrency) POSTing ``payload`` to
    ``url``'s ``/predict/`` for ``run_time_s``, spread over ``workers`` local worker processes and
    ``remote_workers`` started by hand on other machines (they connect to ``bind_host``:``master_port``)."""

    url: str  # the service's base URL, e.g. http://127.0.0.1:8080
    payload: Path
    users: int
    run_time_s: int
    workers: int = 2
    spawn_rate: float | None = None  # users started per second; default: all of them within a second
    stop_timeout_s: int = 60  # requests in flight at the end may finish (ab's -s 60 bounds one request)
    workers_wait_s: int = 30
    remote_workers: int = 0
    bind_host: str = "127.0.0.1"  # 0.0.0.0 (or this machine's address) for remote workers
    master_port: int | None = None  # None: a free port, chosen at run time

    def __post_init__(self) -> None:
        if self.users < 1 or self.workers + self.remote_workers < 1 or self.run_time_s < 1:
            raise ValueError(
                f"users, workers and run time must be positive (users {self.users}, workers {self.workers} + "
                f"{self.remote_workers} remote, run time {self.run_time_s} s)"
            )

    @property
    def rate(self) -> float:
        return self.spawn_rate if self.spawn_rate is not None else float(self.users)

    @property
    def deadline_s(self) -> float:
        """The longest the whole run may take before it is stopped and judged a failure."""
        spawn_s = math.ceil(self.users / self.rate)
        return self.workers_wait_s + spawn_s + self.run_time_s + self.stop_timeout_s + _WALL_CLOCK_MARGIN_S


def locust_version() -> str:
    if importlib.util.find_spec("locust") is None:
        raise LocustNotInstalled("Locust is not installed: pip install -e '.[test]' (or make setup)")
    return importlib.metadata.version("locust")


def _locust() -> list[str]:
    """Locust of this interpreter's environment (no need for its script to be on PATH)."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]


def master_command(spec: LocustSpec, port: int, csv_prefix: Path) -> list[str]:
    """The master: headless, waits for all the workers (local and remote), writes ``csv_prefix``_*.csv and exits
    1 when any request failed."""
    return [
        *_locust(),
        "--headless",
        "--master",
        "--master-bind-host",
        spec.bind_host,
        "--master-bind-port",
        str(port),
        "--expect-workers",
        str(spec.workers + spec.remote_workers),
        "--expect-workers-max-wait",
        str(spec.workers_wait_s),
        "--host",
        spec.url.rstrip("/"),
        "--users",
        str(spec.users),
        "--spawn-rate",
        f"{spec.rate:g}",
        "--run-time",
        f"{spec.run_time_s}s",
        "--stop-timeout",
        str(spec.stop_timeout_s),
        "--csv",
        str(csv_prefix),
        "--exit-code-on-error",
        "1",
        "--only-summary",
    ]


def worker_command(port: int, master_host: str = "127.0.0.1") -> list[str]:
    """A worker: takes its users, run time and host from the master."""
    return [*_locust(), "--worker", "--master-host", master_host, "--master-port", str(port)]


def free_port() -> int:
    """A loopback port nobody listens on right now (the master binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _end(processes: list[subprocess.Popen[bytes]]) -> None:
    """Ask every process still running to stop, then kill what does not."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_master(master: subprocess.Popen[bytes], spec: LocustSpec, history: Path, label: str) -> int | None:
    """The master's exit code, or None when it outlasted ``spec.deadline_s``; a progress line every few seconds
    from the stats history while it runs."""
    started = time.monotonic()
    last_report = started
    while (exit_code := master.poll()) is None:
        now = time.monotonic()
        if now - started > spec.deadline_s:
            return None
        if now - last_report >= _PROGRESS_EVERY_S:
            last_report = now
            # The master writes its history in buffered blocks, from the workers' reports every 3 s: a hint only.
            seen = history_snapshot(_read(history))
            so_far = f", {seen.requests} requests so far ({seen.failures} failed)" if seen and seen.requests else ""
            log.info(f"{label}: {now - started:.0f} s elapsed (runs {spec.run_time_s} s after start-up){so_far}")
        time.sleep(_POLL_S)
    return exit_code


def run_locust(spec: LocustSpec, label: str = "locust", csv_dir: Path | None = None) -> LoadOutcome:
    """One master and ``spec.workers`` workers on loopback (and the remote ones, if any), to completion; the
    judged figures. The CSV files and logs go to a temporary folder, or to ``csv_dir`` (kept) when given."""
    version = locust_version()
    if not spec.payload.is_file():
        raise FileNotFoundError(f"no request body at {spec.payload}")
    log.info(
        f"{label}: Locust {version}, {spec.users} users on {spec.workers} local + {spec.remote_workers} remote "
        f"workers for {spec.run_time_s} s "
        f"against {spec.url}"
    )
    env = {**os.environ, PAYLOAD_ENV: str(spec.payload.resolve())}
    with tempfile.TemporaryDirectory(prefix="model-serving-locust-") as scratch:
        folder = csv_dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        prefix = folder / "run"
        port = spec.master_port or free_port()
        if spec.remote_workers:
            log.info(
                f"{label}: waiting up to {spec.workers_wait_s} s for {spec.remote_workers} remote workers "
                f"(--master-port {port})"
            )
        processes: list[subprocess.Popen[bytes]] = []
        try:
            with (folder / "master.log").open("wb") as output:
                master = subprocess.Popen(
                    master_command(spec, port, prefix), stdout=output, stderr=subprocess.STDOUT, env=env
                )
            processes.append(master)
            for index in range(spec.workers):
                with (folder / f"worker-{index}.log").open("wb") as output:
                    processes.append(
                        subprocess.Popen(worker_command(port), stdout=output, stderr=subprocess.STDOUT, env=env)
                    )
            exit_code = _wait_for_master(master, spec, Path(f"{prefix}_stats_history.csv"), label)
        finally:
            _end(processes)
        log_tail = _read(folder / "master.log")[-3000:]
        if exit_code is None:
            return LoadOutcome(
                None, f"locust did not finish within {spec.deadline_s:.0f} s; the master's log ends: {log_tail}", -1
            )
        outcome = judge_locust_run(
            exit_code,
            _read(Path(f"{prefix}_stats.csv")),
            _read(Path(f"{prefix}_failures.csv")),
            _read(Path(f"{prefix}_exceptions.csv")),
            spec.users,
            log_tail,
        )
    if outcome.report is not None:
        log.info(
            f"{label}: {outcome.report.complete} requests, {outcome.report.rps:.1f} req/s, "
            f"p50 {outcome.report.latency_ms['p50']:.0f} ms, p99 {outcome.report.latency_ms['p99']:.0f} ms"
        )
    return outcome
