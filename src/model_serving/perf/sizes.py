"""Payload sizes: the same closed-loop load at several photo-like JPEGs, against services already up side by side,
with each run's stages from the services' own ``/metrics``. A service's cost grows with the pixels it decodes and
resizes; production traffic is a mix of sizes, so one size's figure is not the whole answer."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model_serving.perf.endpoint import Endpoint
from model_serving.perf.measure import StageFigures, staged_ab
from model_serving.perf.rounds import rotated

log = logging.getLogger(__name__)


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """``320x240,1920x1080`` → ((320, 240), (1920, 1080))."""
    sizes = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        width, sep, height = part.lower().partition("x")
        if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
            raise ValueError(f"--payload-sizes: {part!r} is not WIDTHxHEIGHT (e.g. 640x480)")
        sizes.append((int(width), int(height)))
    if not sizes:
        raise ValueError("--payload-sizes: no sizes given")
    return tuple(sizes)


@dataclass(frozen=True)
class SizePoint:
    width: int
    height: int
    body_bytes: int
    rps: float | None
    stages_ms: StageFigures = field(default_factory=dict)
    failure: str | None = None

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def run_sizes(
    running: Mapping[str, Endpoint],
    payloads: Sequence[tuple[int, int, Path]],
    requests: int,
    concurrency: int,
) -> dict[str, list[SizePoint]]:
    """For each (width, height, request body) ab against each service in turn, its stages scraped around it."""
    points: dict[str, list[SizePoint]] = {name: [] for name in running}
    for index, (width, height, body_path) in enumerate(payloads):
        size = body_path.stat().st_size
        for name in rotated(list(running), index):
            log.info(f"{name}: payload {width}×{height} ({size / 1e3:.0f} KB body), ab -n {requests} -c {concurrency}")
            run = staged_ab(running[name], body_path, requests, concurrency)
            report = run.outcome.report
            points[name].append(
                SizePoint(width, height, size, report.rps if report else None, run.stages_ms, run.outcome.failure)
            )
    return points
