"""In-process classifiers over image file bytes: the torch reference and the ONNX Runtime path.

Used as the reference in agreement tests and as the no-HTTP throughput limit in efficiency figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
import torch

from model_serving.decoding import decode_rgb
from model_serving.model.mobilenet import MobileNetV3Small
from model_serving.model.onnx_graph import INPUT_NAME, OUTPUT_NAME
from model_serving.model.preprocessing import preprocess


class Classifier(Protocol):
    def probabilities(self, image_file: bytes) -> np.ndarray:
        """Image file bytes → 11 probabilities in class order."""
        ...


class TorchClassifier:
    """Pillow decode → torch preprocessing → eager model → softmax."""

    def __init__(self, model: MobileNetV3Small, threads: int | None = None) -> None:
        self.model = model.eval()
        if threads is not None:
            torch.set_num_threads(threads)

    def probabilities(self, image_file: bytes) -> np.ndarray:
        with torch.inference_mode():
            logits = self.model(preprocess(decode_rgb(image_file)))
            return torch.softmax(logits, dim=1)[0].numpy()


class OnnxClassifier:
    """Pillow decode → the served ONNX graph (preprocessing inside) in ONNX Runtime."""

    def __init__(self, model_path: Path, threads: int | None = None, optimize: bool = False) -> None:
        options = ort.SessionOptions()
        # The served model is optimized offline; optimizing again at load time would only cost start-up.
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def probabilities(self, image_file: bytes) -> np.ndarray:
        pixels = decode_rgb(image_file)[None]
        result: np.ndarray = self.session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0][0]
        return result
