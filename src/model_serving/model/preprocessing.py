"""The preprocessing contract (DESIGN §3, steps 2–4) as the torch reference.

Every service must reproduce these numbers; the ONNX graph in :mod:`model_serving.model.onnx_graph` is the
same contract written in ONNX operators.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

RESIZE_SHORT_SIDE = 256
CROP_SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def resized_size(height: int, width: int, short_side: int = RESIZE_SHORT_SIDE) -> tuple[int, int]:
    """Shorter side to ``short_side``, longer side ``floor(short_side * long / short)``."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    short = min(height, width)
    return (short_side * height) // short, (short_side * width) // short


def crop_offsets(height: int, width: int, crop: int = CROP_SIZE) -> tuple[int, int]:
    """Top and left of a centred crop; halves round to even, as Python's ``round`` and ONNX ``Round`` do."""
    return round((height - crop) / 2), round((width - crop) / 2)


def preprocess(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """RGB uint8 ``H×W×3`` → normalized float32 ``1×3×224×224``."""
    pixels = torch.as_tensor(image)
    if pixels.dtype != torch.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3, got {pixels.dtype} {tuple(pixels.shape)}")
    x = pixels.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
    new_h, new_w = resized_size(x.shape[2], x.shape[3])
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
    top, left = crop_offsets(new_h, new_w)
    x = x[:, :, top : top + CROP_SIZE, left : left + CROP_SIZE]
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std
