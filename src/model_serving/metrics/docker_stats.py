"""Figures from the engine's container stats (the ``docker stats`` API): pure functions over one sample."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

Sample = Mapping[str, Any]


def memory_bytes(sample: Sample) -> int | None:
    """Usage minus inactive file cache, as ``docker stats`` shows it; None when the sample has no usage."""
    memory = sample.get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        return None
    stats = memory.get("stats") or {}
    # cgroup v1 reports total_inactive_file (hierarchical), v2 inactive_file; the docker CLI prefers the former.
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return int(usage - inactive) if inactive < usage else int(usage)


def cpu_percent(sample: Sample) -> float | None:
    """CPU use since the previous sample, in percent of one CPU (100 = one full core), as ``docker stats``."""
    cpu, previous = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    try:
        container_delta = cpu["cpu_usage"]["total_usage"] - previous["cpu_usage"]["total_usage"]
        system_delta = cpu["system_cpu_usage"] - previous["system_cpu_usage"]
    except KeyError:
        return None
    online = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or []) or 1
    if system_delta <= 0 or container_delta < 0:
        return None
    return container_delta / system_delta * online * 100.0


def timestamp(sample: Sample) -> float:
    """The sample's time (seconds since the epoch); the engine gives nanoseconds, Python keeps microseconds."""
    text = str(sample["read"])
    head, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(head + "+00:00")
    return moment.timestamp() + (float("0." + fraction) if fraction else 0.0)
