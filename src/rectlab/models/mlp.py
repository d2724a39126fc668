"""A multilayer perceptron with one activation module per hidden layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ..activations import ActivationSpec
from ..errors import InputError
from .common import ActFactory, BasicModule, check_io, init_weights_, make_activation_factory, make_head

__all__ = ["DenseLayer", "MLP"]


class DenseLayer(BasicModule):
    """``fc`` [``bn``] ``act`` [``dropout``]: one hidden layer of an MLP."""

    def __init__(
        self, in_features: int, out_features: int, make_act: ActFactory, dropout: float = 0.0, batch_norm: bool = False
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features, bias=not batch_norm)
        self.bn = nn.BatchNorm1d(out_features) if batch_norm else None
        self.act = make_act(out_features)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc(x)
        if self.bn is not None:
            x = self.bn(x)
        x = self.act(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return x


class MLP(nn.Module):
    """A multilayer perceptron: hidden ``DenseLayer``s (linear + activation) and a linear head.

    Images are average-pooled to ``input_size x input_size`` (a no-op when they already have that size)
    and flattened, so any image size works; with ``input_size=None`` the input is a flat ``(N, in_channels)``
    feature matrix (e.g. the 2-feature XOR problem).

    Args:
        hidden: hidden layer sizes, e.g. ``(256, 256)``; ``()`` gives a linear model; an int is one width.
        depth: with an int ``hidden``, the number of weight layers (as He et al. 2015 count depth): ``depth - 1``
            hidden layers of width ``hidden`` and the head, e.g. ``hidden=64, depth=30`` for a deep plain MLP.
        activation, num_classes, in_channels, head, activation_kwargs: as the other models.
        input_size: side of the pooled image, or ``None`` for flat inputs.
        dropout: dropout after each hidden activation.
        batch_norm: BatchNorm after each hidden linear layer (before the activation).
    """

    def __init__(
        self,
        hidden: Sequence[int] | int = (256, 256),
        activation: ActivationSpec = "relu",
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        depth: int | None = None,
        input_size: int | None = 28,
        dropout: float = 0.0,
        batch_norm: bool = False,
        head: str = "linear",
        activation_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_io(num_classes, in_channels)
        if depth is not None:
            if not isinstance(hidden, int) or not isinstance(depth, int) or depth < 2:
                raise InputError(
                    f"depth needs an int hidden width and depth >= 2, got hidden={hidden!r}, depth={depth!r}"
                )
            hidden = (hidden,) * (depth - 1)
        if isinstance(hidden, int):
            hidden = (hidden,)
        if any(not isinstance(h, int) or h < 1 for h in hidden):
            raise InputError(f"hidden sizes must be positive ints, got {tuple(hidden)}")
        make_act = make_activation_factory(activation, activation_kwargs)
        if input_size is None:
            self.pool = None
            in_features = in_channels
        else:
            self.pool = nn.AdaptiveAvgPool2d(input_size)
            in_features = in_channels * input_size * input_size
        layers = []
        for h in hidden:
            layers.append(DenseLayer(in_features, h, make_act, dropout, batch_norm))
            in_features = h
        self.layers = nn.Sequential(*layers)
        self.head = make_head(head, in_features, num_classes)
        init_weights_(self, make_act, self.head)

    def forward(self, x: Tensor) -> Tensor:
        if self.pool is not None:
            x = self.pool(x).flatten(1)
        return self.head(self.layers(x))
