"""Plain deep conv nets: no BatchNorm, no skips (the models of the He et al. 2015 initialization study).

Papers:
    He et al. 2015, "Delving Deep into Rectifiers" (arXiv 1502.01852), section 2.2 and fig. 2-3: deep plain
    nets (22 and 30 layers) converge with the rectifier-aware init and stall with Xavier's (Glorot & Bengio
    2010). rectlab's plain nets are CIFAR-sized so that they run on a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from torch import Tensor, nn

from ..activations import ActivationSpec
from ..errors import InputError
from .common import ActFactory, BasicModule, check_io, init_weights_, make_activation_factory, make_head

__all__ = ["ConvLayer", "PlainNet"]


PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
PADDING_MODES: tuple[PaddingMode, ...] = ("zeros", "circular", "reflect", "replicate")


class ConvLayer(BasicModule):
    """``conv`` (3x3) [``bn``] ``act`` [``pool``]: one layer of a plain net or of the small CNN."""

    def __init__(
        self,
        in_planes: int,
        planes: int,
        make_act: ActFactory,
        *,
        stride: int = 1,
        batch_norm: bool = False,
        pool: bool = False,
        padding_mode: PaddingMode = "zeros",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_planes, planes, 3, stride=stride, padding=1, bias=not batch_norm, padding_mode=padding_mode
        )
        self.bn = nn.BatchNorm2d(planes) if batch_norm else None
        self.act = make_act(planes)
        self.pool = nn.MaxPool2d(2, ceil_mode=True) if pool else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        x = self.act(x)
        if self.pool is not None:
            x = self.pool(x)
        return x


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


class PlainNet(nn.Module):
    """A plain conv net of any depth: ``depth - 1`` conv layers and a linear head, no BN, no skips.

    The conv layers are split as evenly as possible over ``len(widths)`` stages; the first layer of every
    stage after the first has stride 2 (downsampling without pooling, so that the variance analysis of
    He et al. 2015 applies to every layer). ``depth`` counts weight layers, as the paper does.

    Args:
        depth: number of weight layers (>= 2), e.g. 22 or 30 as in He et al. 2015.
        activation: a registered name, an ``nn.Module`` class or ``make(channels) -> nn.Module``.
        num_classes: classifier outputs.
        in_channels: image channels.
        widths: stage widths (small by default so that 30 layers train on a CPU).
        batch_norm: add BatchNorm after each conv (off for the init study).
        padding_mode: ``"zeros"`` (the paper) or ``"circular"``. Zero padding shrinks the signal at the
            borders (about 4% per layer at 32x32, 16% at 8x8, whatever the init); circular padding removes
            that effect, to check the variance analysis of He et al. 2015 on its own.
        head: ``"linear"`` or ``"relu-classifier"``.
        activation_kwargs: constructor arguments for the activation.
        input_size: average-pool the images to ``input_size x input_size`` first (None: keep them), e.g. 14 for
            Fashion-MNIST at a quarter of the cost.
    """

    def __init__(
        self,
        depth: int = 22,
        activation: ActivationSpec = "relu",
        num_classes: int = 10,
        in_channels: int = 3,
        *,
        widths: Sequence[int] = (16, 32, 64),
        batch_norm: bool = False,
        padding_mode: str = "zeros",
        head: str = "linear",
        activation_kwargs: Mapping[str, Any] | None = None,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        check_io(num_classes, in_channels)
        self.resize = nn.AdaptiveAvgPool2d(input_size) if input_size else None
        if padding_mode not in PADDING_MODES:
            raise InputError(
                f"padding_mode must be 'zeros', 'circular', 'reflect' or 'replicate', got {padding_mode!r}"
            )
        mode = next(m for m in PADDING_MODES if m == padding_mode)
        if not isinstance(depth, int) or depth < 2:
            raise InputError(f"plain net depth counts weight layers and must be an int >= 2, got {depth!r}")
        if not widths:
            raise InputError("widths needs at least one stage width")
        n_conv = depth - 1
        stages = min(len(widths), n_conv)
        make_act = make_activation_factory(activation, activation_kwargs)
        layers: list[nn.Module] = []
        in_planes = in_channels
        for s, count in enumerate(_split(n_conv, stages)):
            for j in range(count):
                stride = 2 if (s > 0 and j == 0) else 1
                layers.append(
                    ConvLayer(in_planes, widths[s], make_act, stride=stride, batch_norm=batch_norm, padding_mode=mode)
                )
                in_planes = widths[s]
        self.depth = depth
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = make_head(head, in_planes, num_classes)
        init_weights_(self, make_act, self.head)

    def forward(self, x: Tensor) -> Tensor:
        if self.resize is not None:
            x = self.resize(x)
        return self.head(self.pool(self.features(x)).flatten(1))
