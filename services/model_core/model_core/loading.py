"""Loading weights and naming them (needs torch)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch

from model_core import CLASSES
from model_core.errors import ModelError
from model_core.mobilenet import MobileNetV3Small
from model_core.state_dict_check import misfit, not_a_state_dict, unreadable


def model_id(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in key order.

    Not the file's hash: ``torch.save`` writes a fresh serialization id into every file.
    """
    digest = hashlib.sha256()
    for name, tensor in state_dict.items():
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{data.dtype}\0{tuple(data.shape)}\0".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_state_dict_file(path: Path, origin: str | None = None) -> MobileNetV3Small:
    """A MobileNetV3-small with an 11-class head, in eval mode, from a torchvision-style state dict file.

    ``origin`` names the file in messages when it was fetched from elsewhere (``gs://…``).
    """
    name = origin or str(path)
    if not path.is_file():
        raise ModelError(f"state dict not found: {name}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt file
        raise unreadable(name, error) from error
    if not isinstance(state, Mapping):
        raise not_a_state_dict(name, state)
    model = MobileNetV3Small()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise misfit(name, len(CLASSES), str(error)) from error
    return model.eval()
