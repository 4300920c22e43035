"""In-process classifiers over image file bytes: the services' own decode-and-predict code, without HTTP.

Used as the reference in agreement tests and as the no-HTTP throughput limit in efficiency figures, so the
figures measure exactly what the services run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from model_core.loading import load_state_dict_file
from onnx_serving.predictor import OnnxPredictor
from serving_common.app import Predictor
from serving_common.decoding import decode_rgb
from torch_serving.predictor import TorchPredictor

if TYPE_CHECKING:
    from model_serving.artifacts import Artifacts


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


def torch_classifier(artifacts: Artifacts, threads: int | None = None) -> DecodeAndPredict:
    """The torch-serving path: the eager model on the artifacts' state dict."""
    return DecodeAndPredict(TorchPredictor(load_state_dict_file(artifacts.path("state_dict")), threads=threads))


def onnx_classifier(artifacts: Artifacts, role: str = "onnx_optimized", threads: int | None = None) -> DecodeAndPredict:
    """The onnx-serving path: ONNX Runtime on the optimized (or plain) graph, loaded as onnx-serving loads it."""
    return DecodeAndPredict(OnnxPredictor(artifacts.path(role), threads=threads))
