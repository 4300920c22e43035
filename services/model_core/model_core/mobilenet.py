"""MobileNetV3-small in plain ``torch.nn``.

torchvision cannot be installed here (its wheels need CUDA torch), so the architecture is written out again.
Module names follow torchvision's ``mobilenet_v3_small`` exactly, so that a state dict trained with
torchvision (11-class head) loads into :class:`MobileNetV3Small` with ``strict=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from model_core import CLASSES

LAST_CHANNEL = 1024

# torchvision uses these BatchNorm settings for MobileNetV3.
_BatchNorm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without going more than 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual block of the network."""

    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    use_se: bool
    hardswish: bool
    stride: int


# The "small" configuration of the MobileNetV3 paper, table 2.
SMALL_BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec(16, 3, 16, 16, True, False, 2),
    BlockSpec(16, 3, 72, 24, False, False, 2),
    BlockSpec(24, 3, 88, 24, False, False, 1),
    BlockSpec(24, 5, 96, 40, True, True, 2),
    BlockSpec(40, 5, 240, 40, True, True, 1),
    BlockSpec(40, 5, 240, 40, True, True, 1),
    BlockSpec(40, 5, 120, 48, True, True, 1),
    BlockSpec(48, 5, 144, 48, True, True, 1),
    BlockSpec(48, 5, 288, 96, True, True, 2),
    BlockSpec(96, 5, 576, 96, True, True, 1),
    BlockSpec(96, 5, 576, 96, True, True, 1),
)


class ConvBNActivation(nn.Sequential):
    """Conv2d (no bias) → BatchNorm → optional activation; children named ``0``, ``1``, ``2``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=False,
            ),
            _BatchNorm(out_channels),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention: global pool → 1×1 conv → ReLU → 1×1 conv → hard sigmoid → scale."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class InvertedResidual(nn.Module):
    """Expand (1×1) → depthwise (k×k) → optional SE → project (1×1), with a skip when shapes allow."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        activation: type[nn.Module] = nn.Hardswish if spec.hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if spec.expanded != spec.in_channels:
            layers.append(ConvBNActivation(spec.in_channels, spec.expanded, 1, activation=activation))
        layers.append(
            ConvBNActivation(
                spec.expanded,
                spec.expanded,
                spec.kernel,
                stride=spec.stride,
                groups=spec.expanded,
                activation=activation,
            )
        )
        if spec.use_se:
            layers.append(SqueezeExcitation(spec.expanded, make_divisible(spec.expanded // 4)))
        layers.append(ConvBNActivation(spec.expanded, spec.out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = spec.stride == 1 and spec.in_channels == spec.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


class MobileNetV3Small(nn.Module):
    """MobileNetV3-small; input normalized float NCHW, output ``num_classes`` logits."""

    def __init__(self, num_classes: int = len(CLASSES), dropout: float = 0.2) -> None:
        super().__init__()
        first = SMALL_BLOCKS[0].in_channels
        last_in = SMALL_BLOCKS[-1].out_channels
        last_out = 6 * last_in
        layers: list[nn.Module] = [ConvBNActivation(3, first, 3, stride=2, activation=nn.Hardswish)]
        layers.extend(InvertedResidual(spec) for spec in SMALL_BLOCKS)
        layers.append(ConvBNActivation(last_in, last_out, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_out, LAST_CHANNEL),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(LAST_CHANNEL, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation, so that a seeded model is the one torchvision would make.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def penultimate(self, x: torch.Tensor) -> torch.Tensor:
        """The 1024 features the last linear layer sees."""
        pooled = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[2](self.classifier[1](self.classifier[0](pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[3](self.penultimate(x))
