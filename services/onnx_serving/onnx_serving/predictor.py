"""The offline-optimized ONNX model in ONNX Runtime, its layout transforms made as it loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from model_core.errors import ModelError
from model_core.manifest import model_file
from serving_common.config import Settings
from serving_common.stages import StageTimes

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
#: The joint of the two sub-graphs the in-process bench times apart (the harness exports them).
PIXELS_NAME = "pixel_values"


def load_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # Optimized offline without the layout transforms, which depend on this CPU's vector width
    # (the harness's export does that: artifacts.OFFLINE_LEVEL); ORT_ENABLE_ALL makes them here, in about 7 ms.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own exception types for unloadable models
        raise ModelError(f"ONNX Runtime cannot load {path}: {error}") from error


class OnnxPredictor:
    """RGB pixels → probabilities with the served graph (preprocessing inside)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.session = load_session(path, threads)
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

    @classmethod
    def split(cls, preprocess: Path, network: Path, threads: int | None = None) -> SplitOnnxPredictor:
        """The served graph's two halves as two sessions: for the in-process bench only (one call costs less)."""
        return SplitOnnxPredictor(load_session(preprocess, threads), load_session(network, threads))

    def probabilities(self, pixels: np.ndarray, stages: StageTimes | None = None) -> np.ndarray:
        stages = stages if stages is not None else StageTimes()
        with stages.timing("inference"):  # preprocessing and network are one graph, one call
            result: np.ndarray = self.session.run([OUTPUT_NAME], {INPUT_NAME: pixels[None]})[0][0]
        return result


class SplitOnnxPredictor:
    """The preprocessing sub-graph, then the network, timed as ``preprocess`` and ``model``."""

    def __init__(self, preprocess: ort.InferenceSession, network: ort.InferenceSession) -> None:
        self.preprocess, self.network = preprocess, network

    def probabilities(self, pixels: np.ndarray, stages: StageTimes | None = None) -> np.ndarray:
        stages = stages if stages is not None else StageTimes()
        with stages.timing("preprocess"):
            batch = self.preprocess.run([PIXELS_NAME], {INPUT_NAME: pixels[None]})[0]
        with stages.timing("model"):
            result: np.ndarray = self.network.run([OUTPUT_NAME], {PIXELS_NAME: batch})[0][0]
        return result
