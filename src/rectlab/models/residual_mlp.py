"""A residual MLP: the dense analogue of the CIFAR ResNets, a cheap stand-in for them on a CPU.

Each [`ResidualDenseBlock`][rectlab.models.ResidualDenseBlock] is He et al. 2016a's post-activation basic block with the
3x3 convolutions replaced by linear layers: ``fc-BN-act-fc-BN``, add the input, ``act``. Its ``act2``
follows the addition, so it is the "last ReLU of the basic module" that EraseReLU (Dong et al. 2017,
arXiv 1709.07634) removes. The reproductions use it as a stated proxy for conv ResNets at quick scale:
it keeps the residual structure, BatchNorm and the position of the activations, and drops the
convolutions (no spatial weight sharing, no downsampling stages).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from ..activations import ActivationSpec
from ..errors import InputError
from .common import ActFactory, BasicModule, check_io, init_weights_, make_activation_factory, make_head

__all__ = ["ResidualDenseBlock", "ResidualMLP"]


class ResidualDenseBlock(BasicModule):
    """``fc1-[bn1]-act1-fc2-[bn2]``, add the input, ``act2`` (post-activation, He et al. 2016a fig. 2)."""

    def __init__(self, width: int, make_act: ActFactory, batch_norm: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width, bias=not batch_norm)
        self.bn1 = nn.BatchNorm1d(width) if batch_norm else nn.Identity()
        self.act1 = make_act(width)
        self.fc2 = nn.Linear(width, width, bias=not batch_norm)
        self.bn2 = nn.BatchNorm1d(width) if batch_norm else nn.Identity()
        self.act2 = make_act(width)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.fc1(x)))
        return self.act2(self.bn2(self.fc2(out)) + x)


class ResidualMLP(nn.Module):
    """Stem (linear-BN-act), ``blocks`` residual dense blocks of one ``width``, and the head.

    Images are average-pooled to ``input_size x input_size`` and flattened, as in [`MLP`][rectlab.models.MLP].
    Weight layers: ``2 * blocks + 2`` (stem, blocks, head), e.g. 14 for ``blocks=6``.

    Args:
        blocks: residual blocks (the depth).
        width: features of every block.
        activation, num_classes, in_channels, head, activation_kwargs: as the other models.
        input_size: side of the pooled image, or ``None`` for flat inputs.
        batch_norm: BatchNorm after every hidden linear layer (as the CIFAR ResNets).
    """

    def __init__(
        self,
        blocks: int = 3,
        activation: ActivationSpec = "relu",
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        width: int = 128,
        input_size: int | None = 28,
        batch_norm: bool = True,
        head: str = "linear",
        activation_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_io(num_classes, in_channels)
        if not isinstance(blocks, int) or blocks < 1:
            raise InputError(f"blocks must be a positive int, got {blocks!r}")
        if not isinstance(width, int) or width < 1:
            raise InputError(f"width must be a positive int, got {width!r}")
        make_act = make_activation_factory(activation, activation_kwargs)
        self.pool = nn.AdaptiveAvgPool2d(input_size) if input_size is not None else None
        in_features = in_channels * input_size * input_size if input_size is not None else in_channels
        self.stem = nn.Sequential(
            nn.Linear(in_features, width, bias=not batch_norm),
            nn.BatchNorm1d(width) if batch_norm else nn.Identity(),
            make_act(width),
        )
        self.blocks = nn.Sequential(*(ResidualDenseBlock(width, make_act, batch_norm) for _ in range(blocks)))
        self.head = make_head(head, width, num_classes)
        init_weights_(self, make_act, self.head)

    def forward(self, x: Tensor) -> Tensor:
        if self.pool is not None:
            x = self.pool(x).flatten(1)
        return self.head(self.blocks(self.stem(x)))
