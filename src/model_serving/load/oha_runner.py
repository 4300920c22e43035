"""Running oha at a fixed arrival rate (open loop) against a service, and judging the run.

ab keeps C requests in flight and sends the next only when one returns (closed loop), so a slow answer also
delays the requests behind it and the stall goes largely unmeasured. oha with ``-q`` schedules requests at a
fixed rate; with ``--latency-correction`` each latency counts from the scheduled send time (DESIGN §6).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from model_serving.docker.wheels import cache_dir
from model_serving.load.oha_parser import OhaParseError, OpenLoopReport, parse_oha_json

log = logging.getLogger(__name__)

# Beyond the run itself: oha's start, the last requests' timeouts, and a busy machine.
_WALL_CLOCK_MARGIN_S = 30.0


class OhaNotInstalled(RuntimeError):
    pass


@dataclass(frozen=True)
class OpenLoopOutcome:
    """An oha run judged: ``report`` when oha finished, ``failure`` when it is not a valid measurement."""

    report: OpenLoopReport | None
    failure: str | None
    exit_code: int | None  # None when oha was stopped for running too long

    @property
    def ok(self) -> bool:
        return self.failure is None


def cached_oha() -> Path:
    """Where ``scripts/install-oha.sh`` builds oha: ``<cache dir>/tools/bin/oha`` (the script spells out the same
    rule in bash, since it runs before the virtualenv exists)."""
    return cache_dir() / "tools" / "bin" / "oha"


def find_oha() -> Path:
    """The pinned build in the cache first (the version the reports were calibrated with), else oha on PATH."""
    cached = cached_oha()
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    on_path = shutil.which("oha")
    if on_path is not None:
        return Path(on_path)
    raise OhaNotInstalled(f"oha is not installed (not at {cached}, not on PATH): run `make setup`")


def oha_version(binary: Path) -> str:
    output = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False).stdout
    return output.strip() or "unknown"


@dataclass(frozen=True)
class OpenLoopSpec:
    """One oha run: POST ``body_path`` to ``url`` at ``rate_per_s`` for ``duration_s`` or ``requests`` (exactly
    one), at most ``concurrency`` connections; ``timeout_s`` bounds each request."""

    url: str
    body_path: Path
    rate_per_s: float
    concurrency: int
    duration_s: float | None = None
    requests: int | None = None
    latency_correction: bool = True
    content_type: str = "application/json"
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if (self.duration_s is None) == (self.requests is None):
            raise ValueError("give exactly one of duration_s and requests")
        if self.rate_per_s <= 0 or self.concurrency < 1:
            raise ValueError(
                f"rate and concurrency must be positive (rate {self.rate_per_s}, concurrency {self.concurrency})"
            )

    @property
    def scheduled_s(self) -> float:
        return self.duration_s if self.duration_s is not None else (self.requests or 0) / self.rate_per_s


def oha_command(binary: Path, spec: OpenLoopSpec) -> list[str]:
    """oha's command line for ``spec``: JSON on stdout and no TUI."""
    # With a duration, -w: answer what was scheduled before the deadline instead of counting it as "aborted due
    # to deadline" errors, which would be oha's doing, not the service's.
    if spec.duration_s is not None:
        length = ["-z", f"{round(spec.duration_s * 1000)}ms", "-w"]
    else:
        length = ["-n", str(spec.requests)]
    return [
        str(binary),
        *length,
        "-c",
        str(spec.concurrency),
        "-q",
        str(spec.rate_per_s),
        *(["--latency-correction"] if spec.latency_correction else []),
        "-t",
        f"{round(spec.timeout_s * 1000)}ms",
        "-m",
        "POST",
        "-D",
        str(spec.body_path),
        "-T",
        spec.content_type,
        "--no-tui",
        "--output-format",
        "json",
        spec.url,
    ]


def judge_oha_run(
    exit_code: int, stdout: str, stderr: str, rate_per_s: float, *, latency_corrected: bool
) -> OpenLoopOutcome:
    """Decide whether an oha run is a measurement; say why not when it is not."""
    if exit_code != 0:
        reason = stderr.strip() or stdout.strip() or "no output"
        return OpenLoopOutcome(None, f"oha failed (exit code {exit_code}): {reason[-2000:]}", exit_code)
    try:
        report = parse_oha_json(stdout, rate_per_s, latency_corrected=latency_corrected)
    except OhaParseError as error:
        return OpenLoopOutcome(None, str(error), exit_code)
    problems = []
    if report.requests == 0:
        problems.append("oha sent no requests")
    if report.errors:
        kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(report.error_kinds.items()))
        problems.append(f"{report.errors} of {report.requests} requests failed ({kinds})")
    if report.non_2xx:
        codes = ", ".join(f"{code}: {count}" for code, count in sorted(report.status_codes.items()) if code // 100 != 2)
        problems.append(f"{report.non_2xx} of {report.requests} responses were not 2xx ({codes})")
    return OpenLoopOutcome(report, "; ".join(problems) or None, exit_code)


def run_oha(spec: OpenLoopSpec, label: str = "oha") -> OpenLoopOutcome:
    """Run oha to completion at a fixed arrival rate; the whole run is stopped (and judged a failure) when it
    outlasts its schedule by more than the request timeout plus a margin."""
    command = oha_command(find_oha(), spec)
    length = f"{spec.duration_s:g} s" if spec.duration_s is not None else f"{spec.requests} requests"
    log.info(
        f"{label}: {spec.rate_per_s:g} requests/s for {length}, at most {spec.concurrency} in flight "
        f"(~{spec.scheduled_s:.0f} s)"
    )
    try:
        finished = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            timeout=spec.scheduled_s + spec.timeout_s + _WALL_CLOCK_MARGIN_S,
        )
    except subprocess.TimeoutExpired as expired:
        return OpenLoopOutcome(None, f"oha did not finish within {expired.timeout:.0f} s: {' '.join(command)}", None)
    return judge_oha_run(
        finished.returncode,
        finished.stdout,
        finished.stderr,
        spec.rate_per_s,
        latency_corrected=spec.latency_correction,
    )
