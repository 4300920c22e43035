"""In-process throughput: how fast a classifier handles one payload with no HTTP in the way."""

from __future__ import annotations

import time
from dataclasses import dataclass

from model_serving.inference import Classifier


@dataclass(frozen=True)
class Rate:
    iterations: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.iterations / self.seconds

    @property
    def ms_per_item(self) -> float:
        return 1000.0 * self.seconds / self.iterations


def in_process_rate(classifier: Classifier, image_file: bytes, min_seconds: float = 3.0, warmup: int = 3) -> Rate:
    """Run decode-and-infer repeatedly for at least ``min_seconds`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        classifier.probabilities(image_file)
    iterations = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < min_seconds:
        classifier.probabilities(image_file)
        iterations += 1
        elapsed = time.perf_counter() - start
    return Rate(iterations, elapsed)
