"""Pieces shared by rectlab's model families: heads, weight init, checks (and the basic-module marker, re-exported)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from .. import activations
from ..activations import ActivationSpec, ReLUClassifier
from ..activations.gains import gain
from ..errors import InputError
from ..surgery.erase import BasicModule  # the EraseReLU marker every block subclasses

__all__ = [
    "ActFactory",
    "BasicModule",
    "HEADS",
    "RecordingFactory",
    "check_io",
    "init_weights_",
    "make_activation_factory",
    "make_head",
]

ActFactory = Callable[[int], nn.Module]

HEADS = ("linear", "relu-classifier", "relu-normalized")
"""The classification heads every model can end in (``TrainConfig.head``)."""


class RecordingFactory:
    """Wraps ``make(channels) -> nn.Module`` and remembers the first module it made.

    The model's weight init reads the activation's gain from that module, so a user's factory is never
    called more often than the model has activation sites.
    """

    def __init__(self, make: ActFactory) -> None:
        self.make = make
        self.first: nn.Module | None = None

    def __call__(self, channels: int) -> nn.Module:
        module = self.make(channels)
        if self.first is None:
            self.first = module
        return module


def make_activation_factory(
    activation: ActivationSpec, activation_kwargs: Mapping[str, Any] | None
) -> RecordingFactory:
    """``make(channels) -> nn.Module`` for a model's activation spec (see
    [`rectlab.activations.factory`][rectlab.activations.factory])."""
    return RecordingFactory(activations.factory(activation, **dict(activation_kwargs or {})))


def make_head(head: str, in_features: int, num_classes: int) -> nn.Module:
    """The classifier: ``"linear"`` (an ``nn.Linear``), ``"relu-classifier"`` (ReLU scores, trained with softmax
    cross-entropy on them) or ``"relu-normalized"`` (Agarap 2018, arXiv 1803.08375, as trained in Keras: the ReLU
    scores divided by their sum; see [`ReLUClassifier`][rectlab.activations.ReLUClassifier])."""
    if head == "linear":
        return nn.Linear(in_features, num_classes)
    if head in ("relu-classifier", "relu-normalized"):
        return ReLUClassifier(in_features, num_classes, normalize=head == "relu-normalized")
    raise InputError(f"unknown head {head!r}; use one of {', '.join(HEADS)}")


def check_io(num_classes: int, in_channels: int) -> None:
    """Reject impossible class or channel counts early, with the value that was passed."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise InputError(f"num_classes must be a positive int, got {num_classes!r}")
    if not isinstance(in_channels, int) or in_channels < 1:
        raise InputError(f"in_channels must be a positive int (1 for grayscale, 3 for RGB), got {in_channels!r}")


def init_weights_(model: nn.Module, make_act: RecordingFactory, head: nn.Module) -> None:
    """He-normal init (He et al. 2015, arXiv 1502.01852, eq. 10) for a model built from one activation factory.

    Every conv/linear layer outside ``head`` is followed by an activation made by ``make_act``, so one gain
    (that of the first activation built) serves them all; the head has no activation after it and gets
    gain 1. Biases start at zero, norms at (1, 0). This is what [`rectlab.init.he_init_`][rectlab.init.he_init_]
    computes from the call graph for rectlab's models, done here without tracing so that building stays cheap.
    """
    act_gain = gain(make_act.first) if make_act.first is not None else 1.0
    head_layers = {id(m) for m in head.modules()}
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            g = 1.0 if id(m) in head_layers else act_gain
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, 0.0, g / math.sqrt(fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
