"""Rectifier-family activations: reference functionals, modules, a registry and factories.

Follows timm's ``create_act`` style: :func:`get` returns a class, :func:`create` an instance,
``None`` / ``""`` give ``None``, and a class passes through.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal, overload

from torch import nn

from ..errors import InputError, InputTypeError
from ..registry import UnknownNameError
from . import functional, selfcheck
from .modules import (
    ACTIVATIONS,
    CELU,
    ELU,
    GCU,
    GELU,
    SELU,
    Activation,
    GELUTanh,
    HeLU,
    Identity,
    LeakyReLU,
    Mish,
    PReLU,
    PReLUShared,
    ReLU,
    ReLUClassifier,
    RReLU,
    SiLU,
    SmeLU,
    Softplus,
    Swish,
    SwishChannelwise,
    SwishLearnable,
)

ActivationSpec = str | type[nn.Module] | Callable[..., nn.Module] | None

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "ActivationSpec",
    "CELU",
    "ELU",
    "GCU",
    "GELU",
    "GELUTanh",
    "HeLU",
    "Identity",
    "LeakyReLU",
    "Mish",
    "PReLU",
    "PReLUShared",
    "ReLU",
    "ReLUClassifier",
    "RReLU",
    "SELU",
    "SiLU",
    "SmeLU",
    "Softplus",
    "Swish",
    "SwishChannelwise",
    "SwishLearnable",
    "create",
    "factory",
    "functional",
    "get",
    "names",
    "selfcheck",
]


def names() -> list[str]:
    """Registered activation names, sorted."""
    return ACTIVATIONS.names()


# Names with a prefix are built from the name itself by the package that owns the prefix (imported on first
# use), so worker processes rebuild them without a registration step: ``search:sigmoid(beta*x)*x``.
PREFIXES = {"search": "rectlab.search.activation"}


@overload
def get(name: None | Literal[""]) -> None: ...  # type: ignore[overload-overlap]  # "" is a str that gives None
@overload
def get(name: str | type[nn.Module]) -> type[nn.Module]: ...
def get(name: str | type[nn.Module] | None) -> type[nn.Module] | None:
    """Return the activation class for ``name``; a class passes through, ``None``/``""`` give ``None``.

    Besides the registered names, ``search:<expression>`` and ``search:<RUN>/<k>`` name activations of the
    activation search (see :mod:`rectlab.search`).
    """
    if name is None or name == "":
        return None
    if isinstance(name, type):
        return name
    if isinstance(name, str) and ":" in name:
        return _prefixed(name)
    return ACTIVATIONS.get(name)


def _prefixed(name: str) -> type[nn.Module]:
    prefix = name.split(":", 1)[0].strip().lower()
    if prefix not in PREFIXES:
        raise UnknownNameError(f"unknown activation prefix {prefix + ':'!r} in {name!r}; known prefixes: "
                               + ", ".join(p + ":" for p in PREFIXES))
    return importlib.import_module(PREFIXES[prefix]).activation_class(name)


@overload
def create(name: None | Literal[""], channels: int | None = None, **kwargs: Any) -> None: ...
@overload
def create(name: str | type[nn.Module], channels: int | None = None, **kwargs: Any) -> nn.Module: ...
def create(name: str | type[nn.Module] | None, channels: int | None = None, **kwargs: Any) -> nn.Module | None:
    """Create an activation module.

    Args:
        name: a registered name (see :func:`names`), an ``nn.Module`` class, or ``None``.
        channels: channel count at the call site; fills ``num_parameters`` for per-channel
            activations (``prelu``, ``swish-channelwise``) and is ignored by the others.
        **kwargs: constructor arguments (e.g. ``negative_slope=0.2``, ``beta=1.5``).

    Returns:
        The module, or ``None`` when ``name`` is ``None`` or ``""``.

    Raises:
        UnknownNameError: for an unknown name (the message lists the known ones).
        ValueError: when a per-channel activation gets no channel count.
    """
    cls = get(name)
    if cls is None:
        return None
    if getattr(cls, "wants_channels", False) and "num_parameters" not in kwargs:
        if channels is None:
            label = name if isinstance(name, str) else cls.__name__
            raise InputError(
                f"activation {label!r} is per-channel and needs the channel count: pass channels=C "
                f"(or num_parameters=C); use num_parameters=1 or 'prelu-shared' for one shared slope"
            )
        kwargs["num_parameters"] = int(channels)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise InputTypeError(f"bad arguments for activation {name!r}: {e}") from None


def factory(spec: ActivationSpec, **kwargs: Any) -> Callable[[int | None], nn.Module]:
    """Turn an activation spec into ``make(channels) -> nn.Module``, as models use it.

    Args:
        spec: a registered name; an ``nn.Module`` class (rectlab's get the channel count when they
            want it, others are built with ``**kwargs`` only); or a callable ``f(channels) -> nn.Module``.
        **kwargs: constructor arguments for names and classes.
    """
    if spec is None or spec == "":
        raise InputError("an activation is required here; pass a name such as 'relu' (see rectlab list activations)")
    if isinstance(spec, str):
        get(spec)  # fail early on unknown names

        def make_named(channels: int | None) -> nn.Module:
            return create(spec, channels=channels, **kwargs)

        return make_named
    if isinstance(spec, type):
        cls: type[nn.Module] = spec
        if issubclass(cls, Activation):
            return lambda channels: create(cls, channels=channels, **kwargs)
        return lambda channels: cls(**kwargs)
    if callable(spec):
        return spec
    raise InputTypeError(f"activation must be a name, an nn.Module class or a callable, got {type(spec).__name__}")
