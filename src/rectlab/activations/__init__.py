"""Rectifier-family activations: reference functionals, modules, a registry and factories.

Follows timm's ``create_act`` style: [`get`][rectlab.activations.get] returns a class,
[`create`][rectlab.activations.create] an instance, ``None`` / ``""`` give ``None``, and a class passes through. A name
may carry constructor parameters, ``"smelu:beta=0.5"`` (see `rectlab.activations.params`, the one parser of that
syntax).

Plugins register their own classes in ``ACTIVATIONS``. A registered class is built with the keyword arguments
of the name (``"my-act:alpha=2"``) or of ``activation_kwargs``, plus ``num_parameters=C`` (the call site's
channel count) when it sets ``wants_channels = True``. Subclasses of [`Activation`][rectlab.activations.Activation] also
accept ``inplace`` and ``backend``; a plain ``nn.Module`` need not: training passes ``backend=`` only to classes
whose constructor takes it (see [`accepts`][rectlab.activations.accepts]).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, Literal, overload

from torch import nn

from ..errors import InputError, InputTypeError
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
from .params import PREFIXES, ActivationSpecError, format_spec, parse_kwargs, parse_spec, split_specs

ActivationSpec = str | type[nn.Module] | Callable[..., nn.Module] | None

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "ActivationSpec",
    "ActivationSpecError",
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
    "accepts",
    "create",
    "factory",
    "format_spec",
    "functional",
    "get",
    "names",
    "selfcheck",
    "parse_kwargs",
    "parse_spec",
    "split_specs",
]


def names() -> list[str]:
    """Registered activation names, sorted."""
    return ACTIVATIONS.names()


@overload
def get(name: None | Literal[""]) -> None: ...  # type: ignore[overload-overlap]  # "" is a str that gives None
@overload
def get(name: str | type[nn.Module]) -> type[nn.Module]: ...
def get(name: str | type[nn.Module] | None) -> type[nn.Module] | None:
    """Return the activation class for ``name``; a class passes through, ``None``/``""`` give ``None``.

    Besides the registered names, ``search:<expression>`` and ``search:<RUN>/<k>`` name activations of the
    activation search (see [`rectlab.search`][rectlab.search]). Parameters in the name (``"smelu:beta=0.5"``) are
    checked for syntax and otherwise ignored here ([`create`][rectlab.activations.create] applies them).
    """
    if name is None or name == "":
        return None
    if isinstance(name, type):
        return name
    if not isinstance(name, str):
        raise InputTypeError(f"an activation is a name or an nn.Module class, got {type(name).__name__}")
    base, _ = parse_spec(name)
    if ":" in base:
        return _prefixed(base)
    return ACTIVATIONS.get(base)


def accepts(name: ActivationSpec, argument: str) -> bool:
    """Whether the activation's constructor takes ``argument`` (by name, or through ``**kwargs``).

    Training passes ``backend=`` only where this is True, so a plugin's plain ``nn.Module`` works in studies.
    """
    cls = get(name) if isinstance(name, (str, type)) else None
    if cls is None:
        return False
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return argument in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _prefixed(name: str) -> type[nn.Module]:
    prefix = name.split(":", 1)[0].strip().lower()
    return importlib.import_module(PREFIXES[prefix]).activation_class(name)


@overload
def create(name: None | Literal[""], channels: int | None = None, **kwargs: Any) -> None: ...
@overload
def create(name: str | type[nn.Module], channels: int | None = None, **kwargs: Any) -> nn.Module: ...
def create(name: str | type[nn.Module] | None, channels: int | None = None, **kwargs: Any) -> nn.Module | None:
    """Create an activation module.

    Args:
        name: a registered name (see [`names`][rectlab.activations.names]), optionally with parameters
            (``"smelu:beta=0.5"``), an ``nn.Module`` class, or ``None``.
        channels: channel count at the call site; fills ``num_parameters`` for per-channel
            activations (``prelu``, ``swish-channelwise``) and is ignored by the others.
        **kwargs: constructor arguments (e.g. ``negative_slope=0.2``, ``beta=1.5``); one the name sets too is
            an error.

    Returns:
        The module, or ``None`` when ``name`` is ``None`` or ``""``.

    Raises:
        UnknownNameError: for an unknown name (the message lists the known ones).
        ValueError: when a per-channel activation gets no channel count, or a parameter is given twice.
    """
    cls = get(name)
    if cls is None:
        return None
    if isinstance(name, str):
        _, params = parse_spec(name)
        twice = sorted(set(params) & set(kwargs))
        if twice:
            raise ValueError(
                f"activation {name!r} sets {', '.join(twice)} and the keyword arguments set it again; "
                f"give each parameter once"
            )
        kwargs = {**params, **kwargs}
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
