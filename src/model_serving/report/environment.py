"""What a report records about where it was measured, so two reports can be compared or refused."""

from __future__ import annotations

import os
import platform
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


def environment() -> dict[str, Any]:
    engine = client().version()
    return {
        "host_cpu": cpu_model(),
        "host_cores": os.cpu_count(),
        "host_memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "docker_engine": engine.get("Version"),
        "docker_host": engine_host(),
        "ab": ab_version(),
        "versions": {p: _version(p) for p in ("model-serving", "torch", "onnxruntime", "onnx", "fastapi", "uvicorn")},
    }
