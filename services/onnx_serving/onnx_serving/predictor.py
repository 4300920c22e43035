"""The offline-optimized ONNX model in ONNX Runtime, loaded with graph optimization disabled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from serving_common.config import Settings
from serving_common.manifest import ModelError, model_file

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


class OnnxPredictor:
    """RGB pixels → probabilities with the served graph (preprocessing inside)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        options = ort.SessionOptions()
        # The served model is optimized offline; optimizing again at load time would only cost start-up.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ORT raises its own exception types for unloadable models
            raise ModelError(f"ONNX Runtime cannot load {path}: {error}") from error
        inputs = {i.name: i for i in self.session.get_inputs()}
        model_input = inputs.get(INPUT_NAME)
        if model_input is None or model_input.type != "tensor(uint8)" or len(model_input.shape) != 4:
            found = [(i.name, i.type, i.shape) for i in inputs.values()]
            raise ModelError(
                f"{path} does not take uint8 [1, H, W, 3] input '{INPUT_NAME}' (found {found}); "
                "export it with `model-serving export`"
            )

    @classmethod
    def from_settings(cls, settings: Settings, manifest: dict[str, Any]) -> OnnxPredictor:
        return cls(model_file(settings.model_dir, manifest, "onnx_optimized"), settings.threads)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        result: np.ndarray = self.session.run([OUTPUT_NAME], {INPUT_NAME: pixels[None]})[0][0]
        return result
