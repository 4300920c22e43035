"""Per-request stage timings (DESIGN §6): monotonic, nanosecond clocks, written by the thread that runs a stage.

The stage names are shared by the three services, their ``/metrics`` histograms and ``Server-Timing`` headers, and
the in-process bench: ``queue`` (waiting for this worker's one processing slot), ``parse`` (JSON + base64),
``decode`` (to RGB pixels), ``preprocess`` and ``model`` (torch: timed apart) or ``inference`` (ONNX: the graph is
one call), and ``total`` (request received → the answer handed to the server to write; the middleware times it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

#: In request order; ``total`` last.
STAGES = ("queue", "parse", "decode", "preprocess", "model", "inference", "total")


class StageTimes:
    """The durations (ns) of the stages one request went through; a stage that did not run is absent."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = {}

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        started = time.perf_counter_ns()
        try:
            yield
        finally:
            self.ns[stage] = time.perf_counter_ns() - started

    def seconds(self) -> dict[str, float]:
        return {stage: ns / 1e9 for stage, ns in self.ns.items()}


def server_timing(stage_ns: dict[str, int]) -> str:
    """The W3C ``Server-Timing`` value, in milliseconds, in :data:`STAGES` order: ``parse;dur=1.904, …``."""
    return ", ".join(f"{stage};dur={stage_ns[stage] / 1e6:.3f}" for stage in STAGES if stage in stage_ns)
