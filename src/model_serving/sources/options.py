"""The two model options, ``--state-dict`` and ``--onnx-model``, with their variables: one definition for the
``model-serving`` command and for pytest (both parse with argparse)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

TORCH_MODEL_URI = "TORCH_MODEL_URI"
ONNX_MODEL_URI = "ONNX_MODEL_URI"


def add_model_uri_options(add: Callable[..., Any]) -> None:
    """Declare both options through ``add`` (``ArgumentParser.add_argument`` or pytest's ``addoption``)."""
    add(
        "--state-dict",
        default=os.environ.get(TORCH_MODEL_URI) or None,
        metavar="URI",
        help="torchvision-style MobileNetV3-small state dict (11 classes): a path, file:///… or gs://bucket/object "
        f"(default: ${TORCH_MODEL_URI}, else the seeded default model)",
    )
    add(
        "--onnx-model",
        default=os.environ.get(ONNX_MODEL_URI) or None,
        metavar="URI",
        help="a prebuilt ONNX model for the ONNX services instead of the derived one; must take uint8 [1, H, W, 3] "
        f"and give the state dict's probabilities (default: ${ONNX_MODEL_URI}, else derived)",
    )
