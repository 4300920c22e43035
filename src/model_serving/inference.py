"""In-process classifiers over image file bytes: the services' own decode-and-predict code, without HTTP.

Used as the reference in agreement tests and as the no-HTTP throughput limit in efficiency figures, so the
figures measure exactly what the services run.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from serving_common.app import Predictor
from serving_common.decoding import decode_rgb


class Classifier(Protocol):
    def probabilities(self, image_file: bytes) -> np.ndarray:
        """Image file bytes → 11 probabilities in class order."""
        ...


class DecodeAndPredict:
    """Pillow decode (as the Python services do) followed by a service's predictor."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def probabilities(self, image_file: bytes) -> np.ndarray:
        return self.predictor.probabilities(decode_rgb(image_file))
