"""In-process throughput: how fast a classifier handles one payload with no HTTP in the way."""

from __future__ import annotations

from dataclasses import dataclass

from model_serving.inference import Classifier
from serving_common.bench import time_calls


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


def in_process_rate(classifier: Classifier, image_file: bytes, min_seconds: float = 3.0) -> Rate:
    """Run decode-and-infer repeatedly for at least ``min_seconds`` (after a few untimed calls)."""
    return Rate(*time_calls(lambda: classifier.probabilities(image_file), min_seconds))
