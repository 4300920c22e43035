"""What a report records about where it was measured, so two reports can be compared or refused."""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata
from typing import Any

from model_serving.docker.engine import client, engine_host
from model_serving.host import cpu_model
from model_serving.load.ab_runner import ab_version


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def ab_name(version_line: str) -> str:
    """ApacheBench's name and version from the first line of ``ab -V`` ("This is ApacheBench, Version 2.3
    <$Revision: 1913912 $>" → "ApacheBench 2.3"; Debian's build leaves the revision keyword unexpanded); the line as
    it is when it names no version."""
    found = re.search(r"ApacheBench, Version (\S+)", version_line)
    return f"ApacheBench {found.group(1)}" if found else version_line


def environment(engine: bool = True) -> dict[str, Any]:
    """This machine and its tools; with ``engine`` the Docker engine's version and where its ports are reached
    (a ``--target`` run leaves the engine alone: docker_engine null, no docker_host)."""
    docker: dict[str, Any] = {"docker_engine": None}
    if engine:
        docker = {"docker_engine": client().version().get("Version"), "docker_host": engine_host()}
    return {
        "host_cpu": cpu_model(),
        "host_cores": os.cpu_count(),
        "host_memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        **docker,
        "ab": ab_name(ab_version()),
        "versions": {p: _version(p) for p in ("model-serving", "torch", "onnxruntime", "onnx", "fastapi", "uvicorn")},
    }
