"""In-process throughput and stage times of a service's request path, without HTTP.

``python -m serving_common.bench PREDICTOR IMAGE [SECONDS [PREPROCESS_ONNX NETWORK_ONNX]]`` (PREDICTOR as
``module:Class``, built with ``from_settings``) prints one JSON line::

    {"iterations": n, "seconds": s, "threads": t, "stages_ms": {"parse": {"mean": …, "p50": …, "p99": …}, …}}

Each iteration parses the request body (JSON + base64, made once from IMAGE), decodes and classifies, each stage
timed; ``seconds`` is the time of the decode-and-infer part, so ``iterations / seconds`` is the limit a service's
throughput is compared to (DESIGN §6). An ONNX graph is one call (``inference``); with the two sub-graphs given
(preprocessing and network, ``PREDICTOR.split``) they are then timed apart as ``preprocess`` and ``model`` for
about half of SECONDS more. The harness runs this inside the service's container, under the same CPU limit.
"""

from __future__ import annotations

import base64
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model_core.manifest import read_manifest
from serving_common.config import Settings
from serving_common.decoding import decode_rgb
from serving_common.request import parse_predict_body
from serving_common.stages import STAGES, StageTimes

_INFER_STAGES = ("decode", "preprocess", "model", "inference")


def time_calls(call: Callable[[], object], min_seconds: float, warmup: int = 3) -> tuple[int, float]:
    """Call repeatedly for at least ``min_seconds`` after ``warmup`` untimed calls; (calls, seconds)."""
    for _ in range(warmup):
        call()
    iterations, started, elapsed = 0, time.perf_counter(), 0.0
    while elapsed < min_seconds:
        call()
        iterations += 1
        elapsed = time.perf_counter() - started
    return iterations, elapsed


def stage_summary_ms(samples_ns: list[int]) -> dict[str, float]:
    """Mean, median and p99 (nearest rank: the ceil(0.99 n)-th smallest) in milliseconds, as the binary's --bench."""
    ordered = sorted(samples_ns)
    rank = max(0, -(-99 * len(ordered) // 100) - 1)
    return {
        "mean": round(statistics.fmean(ordered) / 1e6, 4),
        "p50": round(statistics.median(ordered) / 1e6, 4),
        "p99": round(ordered[rank] / 1e6, 4),
    }


def _timed_runs(call: Callable[[StageTimes], None], min_seconds: float, at_least: int = 1) -> list[StageTimes]:
    runs: list[StageTimes] = []

    def one() -> None:
        stages = StageTimes()
        call(stages)
        runs.append(stages)

    time_calls(one, min_seconds)
    while len(runs) < at_least + 3:
        one()
    return runs[3:]  # the warm-up calls are not figures


def measure(
    predictor: Any, image: bytes, min_seconds: float, split: Any | None = None, max_pixels: int | None = None
) -> dict[str, Any]:
    body = json.dumps({"image": base64.b64encode(image).decode()}).encode()

    def request_path(stages: StageTimes) -> None:
        with stages.timing("parse"):
            data = parse_predict_body(body)
        with stages.timing("decode"):
            pixels = decode_rgb(data, max_pixels=max_pixels)
        predictor.probabilities(pixels, stages)

    runs = _timed_runs(request_path, min_seconds)
    samples: dict[str, list[int]] = {}
    for run in runs:
        for stage, ns in run.ns.items():
            samples.setdefault(stage, []).append(ns)
    seconds = sum(ns for run in runs for stage, ns in run.ns.items() if stage in _INFER_STAGES) / 1e9
    if split is not None:
        pixels = decode_rgb(image)
        for run in _timed_runs(lambda stages: split.probabilities(pixels, stages), min_seconds / 2, at_least=5):
            for stage in ("preprocess", "model"):
                samples.setdefault(stage, []).append(run.ns[stage])
    stages_ms = {stage: stage_summary_ms(samples[stage]) for stage in STAGES if stage in samples}
    return {"iterations": len(runs), "seconds": seconds, "stages_ms": stages_ms}


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3, 5):
        print(__doc__, file=sys.stderr)
        return 2
    module_name, _, class_name = argv[0].partition(":")
    predictor_class = getattr(importlib.import_module(module_name), class_name)
    settings = Settings.from_env(default_port=0)
    predictor = predictor_class.from_settings(settings, read_manifest(settings.model_dir))
    split = predictor_class.split(Path(argv[3]), Path(argv[4]), settings.threads) if len(argv) == 5 else None
    figures = measure(
        predictor, Path(argv[1]).read_bytes(), float(argv[2]) if len(argv) > 2 else 5.0, split, settings.max_pixels
    )
    print(json.dumps({**figures, "threads": settings.threads}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
