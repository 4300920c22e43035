"""In-process throughput of a service's decode-and-predict path, without HTTP.

``python -m serving_common.bench PREDICTOR IMAGE [SECONDS]`` (PREDICTOR as ``module:Class``, built with
``from_settings``) prints one JSON line ``{"iterations": n, "seconds": s}``. The harness runs it inside the
service's container, under the same CPU limit, as the limit the service's throughput is compared to.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from serving_common.config import Settings
from serving_common.decoding import decode_rgb
from serving_common.manifest import read_manifest


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


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    module_name, _, class_name = argv[0].partition(":")
    predictor_class = getattr(importlib.import_module(module_name), class_name)
    settings = Settings.from_env(default_port=0)
    predictor = predictor_class.from_settings(settings, read_manifest(settings.model_dir))
    image = Path(argv[1]).read_bytes()
    iterations, seconds = time_calls(
        lambda: predictor.probabilities(decode_rgb(image)), float(argv[2] if len(argv) > 2 else 5)
    )
    print(json.dumps({"iterations": iterations, "seconds": seconds, "threads": settings.threads}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
