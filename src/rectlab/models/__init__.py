"""Model registry: CIFAR ResNets (post/pre-activation), Wide-ResNets, VGG, plain deep nets, an MLP, a small CNN.

Build by name with [`create`][rectlab.models.create]; every model takes ``activation`` (a registered name, an
``nn.Module`` class, or ``make(channels) -> nn.Module``), ``num_classes`` and ``in_channels``, works for any image of at
least 8x8 (adaptive average pooling before the classifier), and gives every activation site its own module.

Example:
    >>> import torch
    >>> from rectlab import models
    >>> net = models.create("resnet20", activation="prelu", num_classes=10, in_channels=1)
    >>> net(torch.randn(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from ..activations import ActivationSpec
from ..errors import InputTypeError
from ..registry import Registry
from . import external
from .common import HEADS, BasicModule, check_io
from .mlp import MLP, DenseLayer
from .plain import ConvLayer, PlainNet
from .residual_mlp import ResidualDenseBlock, ResidualMLP
from .resnet import BasicBlock, CifarResNet, PreActBlock, ShortcutA, WideResNet
from .small_cnn import SmallCNN
from .vgg import VGG, VGGStage

__all__ = [
    "HEADS",
    "MLP",
    "MODELS",
    "VGG",
    "BasicBlock",
    "BasicModule",
    "CifarResNet",
    "ConvLayer",
    "DenseLayer",
    "PlainNet",
    "PreActBlock",
    "ResidualDenseBlock",
    "ResidualMLP",
    "ShortcutA",
    "SmallCNN",
    "VGGStage",
    "WideResNet",
    "check_name",
    "create",
    "external",
    "names",
]

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def _variant(cls: Callable[..., nn.Module], **fixed: Any) -> Callable[..., nn.Module]:
    """A registry entry: ``cls`` with some constructor arguments fixed by the name (e.g. ``depth=20``)."""

    @functools.wraps(cls)
    def build(**kwargs: Any) -> nn.Module:
        clash = sorted(set(fixed) & set(kwargs))
        if clash:
            raise InputTypeError(
                f"{', '.join(clash)} is fixed by the model name ({fixed}); use the generic name instead"
            )
        return cls(**fixed, **kwargs)

    build.fixed = fixed  # type: ignore[attr-defined]
    build.cls = cls  # type: ignore[attr-defined]
    return build


for _depth in (20, 32, 44, 56, 110):
    MODELS.register(f"resnet{_depth}", _variant(CifarResNet, depth=_depth, preact=False))
    MODELS.register(f"preact-resnet{_depth}", _variant(CifarResNet, depth=_depth, preact=True))
MODELS.register("resnet", _variant(CifarResNet, preact=False))
MODELS.register("preact-resnet", _variant(CifarResNet, preact=True))
for _d, _k in ((16, 4), (16, 8), (28, 10), (40, 4)):
    MODELS.register(f"wrn-{_d}-{_k}", _variant(WideResNet, depth=_d, width=_k))
MODELS.register("wrn", _variant(WideResNet))
for _depth in (11, 16):
    MODELS.register(f"vgg{_depth}", _variant(VGG, depth=_depth))
    MODELS.register(f"vgg{_depth}-bn", _variant(VGG, depth=_depth, batch_norm=True))
MODELS.register("plain", _variant(PlainNet))
MODELS.register("plain-22", _variant(PlainNet, depth=22))
MODELS.register("plain-30", _variant(PlainNet, depth=30))
MODELS.register("mlp", _variant(MLP))
MODELS.register("residual-mlp", _variant(ResidualMLP))
MODELS.register("small-cnn", _variant(SmallCNN))


def names() -> list[str]:
    """Registered model names, sorted (``tv:NAME`` and ``timm:NAME`` are accepted besides these)."""
    return MODELS.names()


def check_name(name: str) -> None:
    """Raise [`UnknownNameError`][rectlab.registry.UnknownNameError] unless ``name`` is registered or a buildable
    ``tv:NAME`` / ``timm:NAME`` (the message lists the known names or the closest matches)."""
    if external.is_external(name):
        external.check_name(name)
    else:
        MODELS.get(name)


def create(
    name: str,
    activation: ActivationSpec = "relu",
    num_classes: int = 10,
    in_channels: int = 3,
    *,
    example_input: Tensor | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build the model registered as ``name``, or a torchvision / timm model named ``tv:NAME`` / ``timm:NAME``.

    Args:
        name: a registered name (see [`names`][rectlab.models.names]), e.g. ``"resnet20"``, ``"wrn-16-4"``,
            ``"vgg16-bn"``, ``"plain"`` (with ``depth=``), ``"mlp"`` (with ``hidden=``), ``"small-cnn"``; or
            ``"tv:resnet18"``, ``"timm:resnet50"``, ... (see
            [`rectlab.models.external.create`][rectlab.models.external.create]).
        activation: a registered activation name, an ``nn.Module`` class, or ``make(channels) -> nn.Module``;
            for ``tv:``/``timm:`` models every activation site is swapped to it (``None`` keeps their own).
        num_classes: classifier outputs.
        in_channels: input image channels (1 for Fashion-MNIST and digits, 3 for CIFAR).
        example_input: a batch shaped like the data. ``tv:``/``timm:`` models use it to pick a small stem for
            small images and to give per-channel activations their channel counts; rectlab's models ignore it.
        **kwargs: model-specific options (``head="relu-classifier"``, ``activation_kwargs={...}``,
            ``depth=``, ``dropout=``, ``batch_norm=``, ``shortcut=``, ...; see the model classes; for
            ``tv:``/``timm:`` models ``pretrained=``, ``stem=`` and the library's own options).

    Returns:
        The model, initialized with He et al. 2015's rectifier-aware normal init for its activation
        (``tv:``/``timm:`` models keep their library's initialization).

    Raises:
        UnknownNameError: for an unknown name (the message lists the known ones).
        TypeError: for an option the model does not take (the message lists those it takes).
    """
    if external.is_external(name):
        check_io(num_classes, in_channels)
        return external.create(name, activation, num_classes, in_channels, example_input=example_input, **kwargs)
    build = MODELS.get(name)
    cls = getattr(build, "cls", build)
    fixed = getattr(build, "fixed", {})
    clash = sorted(set(fixed) & set(kwargs))
    if clash:
        rest = {k: v for k, v in fixed.items() if k not in clash}
        generic = [n for n, b in MODELS.items() if getattr(b, "cls", None) is cls and getattr(b, "fixed", None) == rest]
        hint = f"; use {generic[0]!r} with {clash[0]}=..." if generic else ""
        raise InputTypeError(f"{', '.join(clash)} is fixed by the model name {name!r} ({fixed}){hint}")
    accepted = [
        p
        for p in inspect.signature(cls).parameters
        if p not in fixed and p not in ("activation", "num_classes", "in_channels")
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InputTypeError(
            f"model {name!r} does not take {', '.join(map(repr, unknown))}; its options are: {', '.join(accepted)}"
        )
    return build(activation=activation, num_classes=num_classes, in_channels=in_channels, **kwargs)
