"""Start-up time: container start call → first 200 on ``GET /``, over fresh containers."""

from __future__ import annotations

from collections.abc import Callable

from model_serving.docker.containers import run_service


def measure_startups(
    service: str, image: str, cpus: float, runs: int, progress: Callable[[str], None] = print
) -> list[float]:
    """Start ``runs`` fresh containers one after another; return each one's start-up seconds."""
    samples = []
    for run in range(1, runs + 1):
        with run_service(service, image, cpus) as running:
            samples.append(running.startup_s)
        progress(f"{service}: start-up {run}/{runs}: {running.startup_s:.3f} s")
    return samples
