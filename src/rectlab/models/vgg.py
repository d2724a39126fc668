"""CIFAR-style VGG (Simonyan & Zisserman 2014, arXiv 1409.1556), with or without BatchNorm.

The convolutional part is the paper's configurations A (VGG-11) and D (VGG-16); the classifier is the
single linear layer used for CIFAR after global average pooling, so 1x28x28 and 1x8x8 inputs work too
(max-pooling uses ``ceil_mode`` and keeps at least 1x1). Each stage between poolings is a
[`VGGStage`][rectlab.models.VGGStage], the basic module that EraseReLU (Dong et al. 2017) erases the last ReLU of.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ..activations import ActivationSpec
from ..errors import InputError
from .common import ActFactory, BasicModule, check_io, init_weights_, make_activation_factory, make_head

__all__ = ["CONFIGS", "VGG", "VGGStage"]

# Stage widths of the paper's configurations (Table 1): A = VGG-11, D = VGG-16.
CONFIGS: dict[int, tuple[tuple[int, ...], ...]] = {
    11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
}


class VGGStage(BasicModule):
    """Convolutions (``conv1``, ``bn1``, ``act1``, ``conv2``, ...) followed by 2x2 max-pooling (``pool``)."""

    def __init__(self, in_planes: int, widths: Sequence[int], make_act: ActFactory, batch_norm: bool) -> None:
        super().__init__()
        self.n = len(widths)
        for i, planes in enumerate(widths, start=1):
            self.add_module(f"conv{i}", nn.Conv2d(in_planes, planes, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                self.add_module(f"bn{i}", nn.BatchNorm2d(planes))
            self.add_module(f"act{i}", make_act(planes))
            in_planes = planes
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.batch_norm = batch_norm

    def forward(self, x: Tensor) -> Tensor:
        for i in range(1, self.n + 1):
            x = getattr(self, f"conv{i}")(x)
            if self.batch_norm:
                x = getattr(self, f"bn{i}")(x)
            x = getattr(self, f"act{i}")(x)
        return self.pool(x)


class VGG(nn.Module):
    """VGG-11 / VGG-16 for small images (Simonyan & Zisserman 2014; BN variant after Ioffe & Szegedy 2015).

    Args:
        depth: 11 or 16.
        activation: a registered name, an ``nn.Module`` class or ``make(channels) -> nn.Module``.
        num_classes: classifier outputs.
        in_channels: image channels.
        batch_norm: BatchNorm after every convolution.
        width_mult: scales every stage width (e.g. 0.25 for fast CPU runs).
        head: ``"linear"`` or ``"relu-classifier"``.
        activation_kwargs: constructor arguments for the activation.
    """

    stage1: VGGStage  # added by name in __init__
    stage2: VGGStage
    stage3: VGGStage
    stage4: VGGStage
    stage5: VGGStage

    def __init__(
        self,
        depth: int = 16,
        activation: ActivationSpec = "relu",
        num_classes: int = 10,
        in_channels: int = 3,
        *,
        batch_norm: bool = False,
        width_mult: float = 1.0,
        head: str = "linear",
        activation_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_io(num_classes, in_channels)
        if depth not in CONFIGS:
            raise InputError(f"VGG depth must be one of {sorted(CONFIGS)}, got {depth}")
        if width_mult <= 0:
            raise InputError(f"width_mult must be > 0, got {width_mult}")
        make_act = make_activation_factory(activation, activation_kwargs)
        self.depth = depth
        in_planes = in_channels
        for i, widths in enumerate(CONFIGS[depth], start=1):
            widths = tuple(max(1, round(w * width_mult)) for w in widths)
            self.add_module(f"stage{i}", VGGStage(in_planes, widths, make_act, batch_norm))
            in_planes = widths[-1]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = make_head(head, in_planes, num_classes)
        init_weights_(self, make_act, self.head)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stage5(self.stage4(self.stage3(self.stage2(self.stage1(x)))))
        return self.head(self.pool(x).flatten(1))
