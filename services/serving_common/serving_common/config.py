"""Service configuration from environment variables, with defaults derived from the container's CPU limit."""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: prometheus_client's multiprocess folder; the launcher sets it before any worker imports prometheus_client.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The supervisor of several workers: it serves nothing, but its memory and CPU are the service's too.
SUPERVISOR_PID_ENV = "MODEL_SERVING_SUPERVISOR_PID"
#: /dev/shm is the tmpfs Docker and Kubernetes give each container, writable also with a read-only root filesystem.
DEFAULT_METRICS_DIR = Path("/dev/shm/model-serving-metrics")


def cpu_limit(cgroup_root: Path = Path("/sys/fs/cgroup")) -> float:
    """CPUs this process may use: the cgroup quota (v2 ``cpu.max`` or v1 CFS files), capped by affinity."""
    available = float(len(os.sched_getaffinity(0)))
    quota = _cgroup_quota(cgroup_root)
    return min(available, quota) if quota else available


def _cgroup_quota(root: Path) -> float | None:
    try:
        fields = (root / "cpu.max").read_text().split()
        if fields and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    for folder in ("cpu", "cpu,cpuacct"):
        try:
            quota = int((root / folder / "cpu.cfs_quota_us").read_text())
            period = int((root / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from error
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


# A decimal number as Python's float() reads one (sign, underscores between digits, fraction, exponent), minus
# inf/nan and non-ASCII digits: rust-onnx-serving accepts exactly this grammar too.
_DECIMAL = re.compile(r"[+-]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?", re.ASCII)

#: REQUEST_TIMEOUT_S may be at most a day.
MAX_REQUEST_TIMEOUT_S = 86_400.0


def _seconds_env(name: str, default: float, maximum: float = MAX_REQUEST_TIMEOUT_S) -> float:
    """A positive number of seconds (``0.5``, ``30``, ``1e-3``); unset or blank means the default."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}")
    value = float(text)
    if not value > 0:
        raise ValueError(f"{name} must be greater than 0, got {text}")
    if value > maximum:
        raise ValueError(f"{name} must be at most {maximum:g}, got {text}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything a service reads from its environment; logged once at start."""

    model_dir: Path
    port: int
    workers: int
    threads: int
    cpu_limit: float
    max_body_bytes: int
    max_pixels: int
    #: Seconds a request's processing (parse, decode, inference) may take before it is answered 504.
    request_timeout_s: float
    #: prometheus_client's multiprocess folder (PROMETHEUS_MULTIPROC_DIR): the workers' metric files.
    metrics_dir: Path = DEFAULT_METRICS_DIR

    @classmethod
    def from_env(cls, default_port: int) -> Settings:
        cpus = cpu_limit()
        # One worker per whole CPU, one inference thread each: no oversubscription under the limit.
        workers = _int_env("WORKERS", max(1, math.floor(cpus)))
        threads = _int_env("THREADS", max(1, math.floor(cpus / workers)))
        return cls(
            model_dir=Path(os.environ.get("MODEL_DIR", "/opt/model")),
            port=_int_env("PORT", default_port),
            workers=workers,
            threads=threads,
            cpu_limit=round(cpus, 3),
            max_body_bytes=_int_env("MAX_BODY_BYTES", 16 * 1024 * 1024),
            max_pixels=_int_env("MAX_PIXELS", 50_000_000),
            request_timeout_s=_seconds_env("REQUEST_TIMEOUT_S", 30.0),
            metrics_dir=Path(os.environ.get(MULTIPROC_ENV) or DEFAULT_METRICS_DIR),
        )

    def describe(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}
