"""Sampling a container's memory and CPU from the engine's stats stream while something else runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from docker.models.containers import Container

from model_serving.metrics.docker_stats import cpu_percent, memory_bytes, timestamp


@dataclass
class ResourceSamples:
    """(seconds since the first sample, value) series, filled by :func:`sample_resources`."""

    memory_mb: list[tuple[float, float]] = field(default_factory=list)
    cpu_percent: list[tuple[float, float]] = field(default_factory=list)


def memory_now(container: Container) -> float | None:
    """The container's memory in MB from one stats sample (about a second: the engine waits for a CPU delta)."""
    memory = memory_bytes(container.stats(stream=False))
    return None if memory is None else memory / 1e6


@contextmanager
def sample_resources(container: Container) -> Iterator[ResourceSamples]:
    """Collect stats samples (about one a second) for as long as the ``with`` block runs."""
    samples = ResourceSamples()
    stop = threading.Event()
    stream = container.stats(stream=True, decode=True)

    def collect() -> None:
        start: float | None = None
        for sample in stream:
            if stop.is_set():
                break
            moment = timestamp(sample)
            start = moment if start is None else start
            memory = memory_bytes(sample)
            if memory is not None:
                samples.memory_mb.append((moment - start, memory / 1e6))
            cpu = cpu_percent(sample)
            if cpu is not None:
                samples.cpu_percent.append((moment - start, cpu))

    worker = threading.Thread(target=collect, name="stats-sampler", daemon=True)
    worker.start()
    try:
        yield samples
    finally:
        stop.set()
        # The stream yields about once a second, so the thread notices the flag within that.
        worker.join(timeout=5)
        close = getattr(stream, "close", None)
        if close:
            close()
