"""A small, fast CNN for 28x28 images: the default model of the main Fashion-MNIST job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ..activations import ActivationSpec
from ..errors import InputError
from .common import check_io, init_weights_, make_activation_factory, make_head
from .mlp import DenseLayer
from .plain import ConvLayer

__all__ = ["SmallCNN"]


class SmallCNN(nn.Module):
    """A small, fast CNN for 28x28 images (Fashion-MNIST on a few CPU cores); any size >= 8x8 works.

    Three ``ConvLayer``s (widths 16, 32, 64; 2x2 max-pooling after the first two), global average pooling,
    a hidden ``DenseLayer`` and the head. About 25k parameters and 2M multiply-adds per 28x28 image.

    Args:
        activation, num_classes, in_channels, head, activation_kwargs: as the other models.
        widths: the three conv widths.
        hidden: width of the hidden dense layer (0 to go straight to the head).
        batch_norm: BatchNorm after each conv (off by default, so activations are compared on their own).
        dropout: dropout after the hidden dense layer.
    """

    def __init__(
        self,
        activation: ActivationSpec = "relu",
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        widths: Sequence[int] = (16, 32, 64),
        hidden: int = 128,
        batch_norm: bool = False,
        dropout: float = 0.0,
        head: str = "linear",
        activation_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_io(num_classes, in_channels)
        if len(widths) != 3:
            raise InputError(f"small-cnn has three conv layers; widths needs 3 values, got {tuple(widths)}")
        make_act = make_activation_factory(activation, activation_kwargs)
        w1, w2, w3 = widths
        self.block1 = ConvLayer(in_channels, w1, make_act, batch_norm=batch_norm, pool=True)
        self.block2 = ConvLayer(w1, w2, make_act, batch_norm=batch_norm, pool=True)
        self.block3 = ConvLayer(w2, w3, make_act, batch_norm=batch_norm)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = DenseLayer(w3, hidden, make_act, dropout) if hidden else None
        self.head = make_head(head, hidden or w3, num_classes)
        init_weights_(self, make_act, self.head)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.block3(self.block2(self.block1(x)))).flatten(1)
        if self.fc is not None:
            x = self.fc(x)
        return self.head(x)
