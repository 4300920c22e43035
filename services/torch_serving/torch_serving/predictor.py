"""Torch preprocessing and the eager model, ``eval()`` and ``inference_mode()``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from model_core.errors import ModelError
from model_core.loading import load_state_dict_file, model_id
from model_core.manifest import model_file
from model_core.mobilenet import MobileNetV3Small
from model_core.preprocessing import preprocess_crop
from serving_common.config import Settings
from serving_common.stages import StageTimes


class TorchPredictor:
    """RGB pixels → probabilities with the torch reference preprocessing and the eager model."""

    def __init__(self, model: MobileNetV3Small, threads: int | None = None) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        self.model = model.eval()

    @classmethod
    def from_settings(cls, settings: Settings, manifest: dict[str, Any]) -> TorchPredictor:
        torch.set_num_interop_threads(1)
        model = load_state_dict_file(model_file(settings.model_dir, manifest, "state_dict"))
        loaded = model_id(model.state_dict())
        if loaded != manifest["model_id"]:
            raise ModelError(f"state dict has model_id {loaded}, the manifest says {manifest['model_id']}")
        return cls(model, settings.threads)

    def probabilities(self, pixels: np.ndarray, stages: StageTimes | None = None) -> np.ndarray:
        stages = stages if stages is not None else StageTimes()
        with torch.inference_mode():
            with stages.timing("preprocess"):
                batch = preprocess_crop(pixels)
            with stages.timing("model"):
                return torch.softmax(self.model(batch), dim=1)[0].numpy()
