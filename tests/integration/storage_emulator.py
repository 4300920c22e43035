"""Running a Cloud Storage emulator (the ``gcp-storage-emulator`` package) for tests and local trials.

The emulator runs in a child process with in-memory storage on a free loopback port. Nothing global is changed:
callers get the URL (for ``STORAGE_EMULATOR_HOST`` or a client's ``api_endpoint``) and decide what to set.
The process is always stopped when the ``with`` block ends, also when it raises.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from model_serving.ports import free_ports

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_START_ATTEMPTS = 3  # a free port found before the start can be taken by someone else in between


class EmulatorError(RuntimeError):
    """The emulator did not start; the message has its output."""


@dataclass(frozen=True)
class StorageEmulator:
    """A running emulator: its base URL (``http://127.0.0.1:PORT``) and process id."""

    url: str
    pid: int

    def client(self, project: str = "emulator-project") -> storage.Client:
        """A client bound to this emulator with anonymous credentials, whatever the environment says."""
        return storage.Client(
            project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
        )


@contextlib.contextmanager
def run_storage_emulator(
    *, host: str = "127.0.0.1", startup_timeout: float = STARTUP_TIMEOUT_S
) -> Iterator[StorageEmulator]:
    """Start the emulator on a free port of ``host``, yield it, and stop it however the block ends."""
    with tempfile.TemporaryDirectory(prefix="gcs-emulator-") as workdir:
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = free_ports(1, host)[0]
            log_path = Path(workdir) / f"emulator-{attempt}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gcp_storage_emulator",
                        "start",
                        "--host",
                        host,
                        "--port",
                        str(port),
                        "--in-memory",
                        "--quiet",  # errors and tracebacks only
                    ],
                    cwd=workdir,  # in-memory, but anything it writes stays in the temporary folder
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                url = f"http://{host}:{port}"
                if _wait_until_ready(process, url, log_path, startup_timeout):
                    yield StorageEmulator(url=url, pid=process.pid)
                    return
                output = log_path.read_text(errors="replace")
                if "Address already in use" in output and attempt < _START_ATTEMPTS:
                    continue
                raise EmulatorError(_failure(process, url, startup_timeout, output))
            finally:
                _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float) -> bool:
    """True once the health check answers; False when the process exits, reports an error (its server thread
    can fail, on a taken port, while the process waits on) or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None or "Traceback" in log_path.read_text(errors="replace"):
            return False
        try:
            with urllib.request.urlopen(f"{url}/", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    return False


def _failure(process: subprocess.Popen[bytes], url: str, timeout: float, output: str) -> str:
    if process.poll() is not None:
        status = f"exited with code {process.returncode}"
    elif "Traceback" in output:
        status = "failed"
    else:
        status = f"did not answer in {timeout:g} s"
    tail = "\n".join(output.strip().splitlines()[-20:])
    return f"the Cloud Storage emulator at {url} {status}; its output:\n{tail or '(none)'}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
