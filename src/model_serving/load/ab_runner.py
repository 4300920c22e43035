"""Running ApacheBench against a service, with progress, and judging the run."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path

from model_serving.load.ab_parser import LoadOutcome, judge_ab_run

log = logging.getLogger(__name__)


class AbNotInstalled(RuntimeError):
    pass


def ab_command(url: str, payload: Path, requests: int, concurrency: int, timeout_s: int) -> list[str]:
    """DESIGN §6: ``ab -n N -c C -p payload.json -T application/json URL`` (plus a per-request timeout)."""
    return [
        "ab",
        "-n",
        str(requests),
        "-c",
        str(concurrency),
        "-s",
        str(timeout_s),
        "-p",
        str(payload),
        "-T",
        "application/json",
        url,
    ]


def ab_version() -> str:
    if shutil.which("ab") is None:
        raise AbNotInstalled("ab (ApacheBench) is not installed: apt-get install apache2-utils")
    output = subprocess.run(["ab", "-V"], capture_output=True, text=True, check=False).stdout
    return output.splitlines()[0].strip() if output else "unknown"


def run_ab(
    url: str,
    payload: Path,
    requests: int,
    concurrency: int,
    label: str,
    timeout_s: int = 60,
    *,
    quiet: bool = False,
) -> LoadOutcome:
    """Run ab to completion, logging its progress lines with an estimate of the time left (at DEBUG when
    ``quiet``: an unmeasured warm-up)."""
    ab_version()
    command = ab_command(url, payload, requests, concurrency, timeout_s)
    level = logging.DEBUG if quiet else logging.INFO
    started = time.perf_counter()
    lines: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Completed "):
                done = int(line.split()[1])
                elapsed = time.perf_counter() - started
                left = elapsed * (requests - done) / done if done else 0.0
                log.log(level, f"{label}: {done}/{requests} requests, {elapsed:.0f} s elapsed, ~{left:.0f} s left")
        exit_code = process.wait()
    return judge_ab_run(exit_code, "".join(lines), requests)
