"""CIFAR-style residual networks: post-activation ResNet, pre-activation ResNet, Wide-ResNet.

Papers:
    He et al. 2016a, "Deep Residual Learning for Image Recognition" (arXiv 1512.03385), section 4.2:
    the CIFAR ResNets with 6n+2 layers, three stages of 16/32/64 channels, option-A shortcuts.
    He et al. 2016b, "Identity Mappings in Deep Residual Networks" (arXiv 1603.05027): pre-activation.
    Zagoruyko & Komodakis 2016, "Wide Residual Networks" (arXiv 1605.07146): WRN-d-k.

Every activation site is its own module (``act1``, ``act2``), so activation surgery and probes see one
module per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..activations import ActivationSpec
from ..errors import InputError
from .common import ActFactory, BasicModule, check_io, init_weights_, make_activation_factory, make_head

__all__ = ["BasicBlock", "CifarResNet", "PreActBlock", "ShortcutA", "WideResNet"]

SHORTCUTS = ("A", "B")


def conv3x3(in_planes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)


class ShortcutA(nn.Module):
    """Option-A shortcut (He et al. 2016a, section 4.2): subsample by ``stride``, zero-pad the new channels.

    Parameter-free, so the CIFAR ResNets keep their published parameter counts (0.27M for ResNet-20).
    """

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad_front = (planes - in_planes) // 2
        self.pad_back = planes - in_planes - self.pad_front

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_front, self.pad_back))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad=({self.pad_front}, {self.pad_back})"


def make_shortcut(in_planes: int, planes: int, stride: int, kind: str) -> nn.Module | None:
    """``None`` where the identity fits; else option A (zero-pad) or B (1x1 conv + BN projection)."""
    if stride == 1 and in_planes == planes:
        return None
    if kind == "A":
        return ShortcutA(in_planes, planes, stride)
    if kind == "B":
        return nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
    raise InputError(f"shortcut must be 'A' (zero-padding) or 'B' (1x1 projection), got {kind!r}")


class BasicBlock(BasicModule):
    """Post-activation residual block (He et al. 2016a, fig. 2): conv-BN-act-conv-BN, add, act.

    ``act2`` follows the addition; it is the "last ReLU" that EraseReLU removes.
    """

    def __init__(self, in_planes: int, planes: int, stride: int, make_act: ActFactory, shortcut: str = "A") -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = make_act(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = make_shortcut(in_planes, planes, stride, shortcut)
        self.act2 = make_act(planes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.shortcut is None else self.shortcut(x)
        return self.act2(out + residual)


class PreActBlock(BasicModule):
    """Pre-activation residual block (He et al. 2016b, fig. 1b): BN-act-conv-BN-act-conv, add.

    A projection shortcut reads the pre-activated input, as in the paper; an identity or option-A
    shortcut reads the raw input so the identity path stays clean. ``dropout`` sits between the two
    convolutions (Zagoruyko & Komodakis 2016, section 2.4).
    """

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int,
        make_act: ActFactory,
        shortcut: str = "B",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.act1 = make_act(in_planes)
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = make_act(planes)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = conv3x3(planes, planes)
        self.shortcut = make_shortcut(in_planes, planes, stride, shortcut)
        self.project_preactivated = isinstance(self.shortcut, nn.Sequential)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(x))
        if self.shortcut is None:
            residual = x
        else:
            residual = self.shortcut(out if self.project_preactivated else x)
        out = self.act2(self.bn2(self.conv1(out)))
        if self.dropout is not None:
            out = self.dropout(out)
        return self.conv2(out) + residual


class CifarResNet(nn.Module):
    """CIFAR ResNet with ``depth = 6n + 2`` (He et al. 2016a section 4.2; pre-activation: He et al. 2016b).

    A 3x3 stem conv, three stages of ``n`` blocks (widths ``16, 32, 64``; stride 2 at stages 2 and 3),
    global average pooling and the head. Adaptive pooling makes any input of at least 8x8 work.

    Args:
        depth: 20, 32, 44, 56, 110, ... (``(depth - 2) % 6 == 0``).
        activation: a registered name, an ``nn.Module`` class or ``make(channels) -> nn.Module``.
        num_classes: classifier outputs.
        in_channels: image channels (1 for Fashion-MNIST, 3 for CIFAR).
        preact: pre-activation blocks (adds a final BN-act before pooling).
        shortcut: ``"A"`` (parameter-free, the post-act default) or ``"B"`` (1x1 projection, the pre-act default).
        widths: the three stage widths.
        head: ``"linear"`` or ``"relu-classifier"``.
        activation_kwargs: constructor arguments for the activation (e.g. ``{"negative_slope": 0.2}``).
        input_size: average-pool the images to ``input_size x input_size`` first (None: keep them), e.g. 14 for
            Fashion-MNIST at a quarter of the cost.
    """

    layer1: nn.Sequential  # added by name in __init__
    layer2: nn.Sequential
    layer3: nn.Sequential

    def __init__(
        self,
        depth: int = 20,
        activation: ActivationSpec = "relu",
        num_classes: int = 10,
        in_channels: int = 3,
        *,
        preact: bool = False,
        shortcut: str | None = None,
        widths: Sequence[int] = (16, 32, 64),
        head: str = "linear",
        activation_kwargs: Mapping[str, Any] | None = None,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        check_io(num_classes, in_channels)
        self.resize = nn.AdaptiveAvgPool2d(input_size) if input_size else None
        if depth < 8 or (depth - 2) % 6:
            raise InputError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110), got {depth}")
        if len(widths) != 3:
            raise InputError(f"widths needs one value per stage (3), got {tuple(widths)}")
        shortcut = shortcut or ("B" if preact else "A")
        if shortcut not in SHORTCUTS:
            raise InputError(f"shortcut must be 'A' (zero-padding) or 'B' (1x1 projection), got {shortcut!r}")
        make_act = make_activation_factory(activation, activation_kwargs)
        n = (depth - 2) // 6
        self.depth, self.preact = depth, preact

        self.conv1 = conv3x3(in_channels, widths[0])
        if not preact:
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.act1 = make_act(widths[0])
        in_planes = widths[0]
        for i, planes in enumerate(widths):
            blocks: list[nn.Module] = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                if preact:
                    blocks.append(PreActBlock(in_planes, planes, stride, make_act, shortcut))
                else:
                    blocks.append(BasicBlock(in_planes, planes, stride, make_act, shortcut))
                in_planes = planes
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        if preact:
            self.bn_final = nn.BatchNorm2d(in_planes)
            self.act_final = make_act(in_planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = make_head(head, in_planes, num_classes)
        init_weights_(self, make_act, self.head)

    def forward(self, x: Tensor) -> Tensor:
        if self.resize is not None:
            x = self.resize(x)
        x = self.conv1(x)
        if not self.preact:
            x = self.act1(self.bn1(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        if self.preact:
            x = self.act_final(self.bn_final(x))
        return self.head(self.pool(x).flatten(1))


class WideResNet(nn.Module):
    """Wide-ResNet WRN-d-k (Zagoruyko & Komodakis 2016, arXiv 1605.07146).

    Pre-activation blocks with widths ``16k, 32k, 64k``, ``(d - 4) / 6`` blocks per stage, 1x1 projection
    shortcuts where the shape changes, optional dropout between the convolutions (the paper uses 0.3).

    Args:
        depth: ``d``, with ``(d - 4) % 6 == 0`` (16, 22, 28, 40).
        width: ``k``, the widening factor.
        dropout: dropout probability inside each block.
        activation, num_classes, in_channels, head, activation_kwargs: as [`CifarResNet`][rectlab.models.CifarResNet].
    """

    layer1: nn.Sequential  # added by name in __init__
    layer2: nn.Sequential
    layer3: nn.Sequential

    def __init__(
        self,
        depth: int = 28,
        width: int = 10,
        activation: ActivationSpec = "relu",
        num_classes: int = 10,
        in_channels: int = 3,
        *,
        dropout: float = 0.0,
        head: str = "linear",
        activation_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_io(num_classes, in_channels)
        if depth < 10 or (depth - 4) % 6:
            raise InputError(f"WRN depth must be 6n+4 with n >= 1 (16, 22, 28, 40), got {depth}")
        if width < 1:
            raise InputError(f"WRN width (widening factor k) must be >= 1, got {width}")
        if not 0 <= dropout < 1:
            raise InputError(f"dropout must be in [0, 1), got {dropout}")
        make_act = make_activation_factory(activation, activation_kwargs)
        n = (depth - 4) // 6
        self.depth, self.width = depth, width
        widths = (16 * width, 32 * width, 64 * width)

        self.conv1 = conv3x3(in_channels, 16)
        in_planes = 16
        for i, planes in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(PreActBlock(in_planes, planes, stride, make_act, "B", dropout))
                in_planes = planes
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.bn_final = nn.BatchNorm2d(in_planes)
        self.act_final = make_act(in_planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = make_head(head, in_planes, num_classes)
        init_weights_(self, make_act, self.head)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = self.act_final(self.bn_final(x))
        return self.head(self.pool(x).flatten(1))
