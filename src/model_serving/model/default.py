"""The suite's default model: seeded random weights, made decisive and image-dependent.

With torchvision's initialisation alone every image gets the same near-uniform output (BatchNorm statistics
are 0/1 and the head is tiny), so an agreement test would prove nothing. Two deterministic steps fix that:

1. **BatchNorm recalibration**: running statistics are recomputed on synthetic calibration scenes (not the
   correctness corpus), so activations have realistic scale at every layer.
2. **Head calibration**: the last layer's bias cancels the mean logit over the calibration scenes (no class
   wins for every image) and its weights are scaled so logits have a standard deviation of
   ``HEAD_LOGIT_STD`` (outputs are decisive, not uniform).

Everything runs single-threaded with deterministic algorithms, so the same seed gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from model_core.mobilenet import MobileNetV3Small
from model_core.preprocessing import preprocess
from model_serving.imagegen import synthetic_photo

DEFAULT_SEED = 1234
CALIBRATION_IMAGES = 64
CALIBRATION_SEED_OFFSET = 10_000
HEAD_LOGIT_STD = 2.5


@contextmanager
def _deterministic() -> Iterator[None]:
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic)


def calibration_batch(seed: int, count: int = CALIBRATION_IMAGES) -> torch.Tensor:
    """Preprocessed synthetic scenes of varied sizes and aspect ratios, ``count×3×224×224``."""
    generator = torch.Generator().manual_seed(seed + CALIBRATION_SEED_OFFSET)
    images = []
    for index in range(count):
        width, height = (int(v) for v in torch.randint(160, 640, (2,), generator=generator))
        images.append(preprocess(synthetic_photo(width, height, seed + CALIBRATION_SEED_OFFSET + index)))
    return torch.cat(images)


def _recalibrate_batchnorm(model: MobileNetV3Small, batch: torch.Tensor) -> None:
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: one pass over the batch gives its exact statistics
    model.features.train()
    with torch.no_grad():
        model.features(batch)
    for norm in norms:
        norm.momentum = 0.01
    model.eval()


def _calibrate_head(model: MobileNetV3Small, batch: torch.Tensor) -> None:
    head = model.classifier[3]
    assert isinstance(head, nn.Linear)
    with torch.no_grad():
        features = model.penultimate(batch)
        centred = (features - features.mean(dim=0)) @ head.weight.T
        scale = HEAD_LOGIT_STD / centred.std()
        head.weight.mul_(scale)
        head.bias.copy_(-(features.mean(dim=0) @ head.weight.T))


def build_default_model(seed: int = DEFAULT_SEED) -> MobileNetV3Small:
    """The default model for ``seed``, in eval mode; bit-for-bit the same on every call."""
    with _deterministic():
        torch.manual_seed(seed)
        model = MobileNetV3Small()
        model.eval()
        batch = calibration_batch(seed)
        _recalibrate_batchnorm(model, batch)
        _calibrate_head(model, batch)
    return model
