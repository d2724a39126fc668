"""What counts as an activation: the one table of activation kinds, their op names and negative slopes.

`module_op` says whether a module is an activation and which (``"relu"``, ``"leaky-relu"``, ...),
`function_op` / `method_op` do the same for functional calls (``F.relu``, ``x.relu()``),
`GATING_MODULES` lists the gating nonlinearities (sigmoid/tanh: observed by probes, never edited) and
`negative_slope` gives the negative-side slope of the piecewise-linear rectifiers. Surgery, probes,
optimizer parameter groups and He init all read them from here. The op names are those of rectlab's op table
(`rectlab.activations.ops`) plus the torch.nn activations rectlab has no op for (``relu6``, ``hardswish``);
a functional call is recognised by the Python name of its op (`rectlab.activations.ops.ident`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import ops as op_table
from .modules import ACTIVATIONS, Activation

__all__ = ["GATING_MODULES", "function_op", "method_op", "module_op", "negative_slope", "op_names"]


class _TorchActivation(NamedTuple):
    cls: type[nn.Module]
    op: str
    slope: Callable[[nn.Module], float | None] | None = None  # piecewise-linear rectifiers: slope for x < 0


def _leaky_relu_slope(m: nn.Module) -> float | None:
    return float(m.negative_slope) if isinstance(m, nn.LeakyReLU) else None


def _prelu_slope(m: nn.Module) -> float | None:
    return float(m.weight.detach().float().mean()) if isinstance(m, nn.PReLU) else None


def _rrelu_slope(m: nn.Module) -> float | None:
    return (m.lower + m.upper) / 2 if isinstance(m, nn.RReLU) else None


# The one table of torch.nn's activation modules: what `module_op` names, what a probe observes and
# `rectlab.optim.param_groups` keeps out of weight decay, and (for the piecewise-linear rectifiers) the
# negative-side slope He init's closed-form gain needs. nn.GELU is named from its ``approximate`` argument in
# `module_op`. rectlab's own `rectlab.activations.Activation` classes name themselves.
_TORCH_ACTIVATIONS: tuple[_TorchActivation, ...] = (
    # torch.ao's quantized ReLU6 subclasses nn.ReLU, so only nn.ReLU itself has ReLU's slope.
    _TorchActivation(nn.ReLU, "relu", lambda m: 0.0 if type(m) is nn.ReLU else None),
    _TorchActivation(nn.ReLU6, "relu6"),
    _TorchActivation(nn.LeakyReLU, "leaky-relu", _leaky_relu_slope),
    _TorchActivation(nn.PReLU, "prelu", _prelu_slope),
    _TorchActivation(nn.RReLU, "rrelu", _rrelu_slope),
    _TorchActivation(nn.ELU, "elu"),
    _TorchActivation(nn.CELU, "celu"),
    _TorchActivation(nn.SELU, "selu"),
    _TorchActivation(nn.SiLU, "silu"),
    _TorchActivation(nn.Mish, "mish"),
    _TorchActivation(nn.Softplus, "softplus"),
    _TorchActivation(nn.Hardswish, "hardswish"),
)

GATING_MODULES: tuple[type[nn.Module], ...] = (nn.Tanh, nn.Sigmoid)
"""Gating nonlinearities: not activation sites (they gate LSTMs, attention, squeeze-excitation), but
nonlinearities a probe still observes (see `rectlab.probes.probe_sites`)."""


def _function_ops() -> dict[Any, str]:
    """``torch.nn.functional`` / ``torch`` function -> op: the functions named after an op, and their in-place
    forms (``F.leaky_relu``, ``F.leaky_relu_``, ``torch.relu_`` ...)."""
    table: dict[Any, str] = {}
    for op in (*op_table.names(), *(row.op for row in _TORCH_ACTIVATIONS)):
        name = op_table.ident(op)
        for namespace in (F, torch):
            for fname in (name, name + "_"):
                fn = getattr(namespace, fname, None)
                if fn is not None:
                    table.setdefault(fn, op)
    return table


_FUNCTION_OPS = _function_ops()
_METHOD_OPS = {"relu": "relu", "relu_": "relu"}


def _registered_op(cls: type[nn.Module]) -> str:
    names = {c: n for n, c in ACTIVATIONS.items()}
    for c in cls.__mro__:
        if c in names:
            return names[c]
    return (getattr(cls, "op", "") or cls.__name__).lower().replace("_", "-")


def module_op(module: nn.Module) -> str | None:
    """Registry-style op name of an activation module (``"relu"``, ``"leaky-relu"``, ...), else ``None``."""
    if isinstance(module, Activation):
        return _registered_op(type(module))
    if isinstance(module, nn.GELU):
        return "gelu-tanh" if module.approximate == "tanh" else "gelu"
    for row in _TORCH_ACTIVATIONS:
        if isinstance(module, row.cls):
            return row.op
    return None


def negative_slope(module: nn.Module) -> float | None:
    """Slope for ``x < 0`` of a piecewise-linear rectifier module, else ``None``.

    ReLU 0, LeakyReLU its slope, PReLU the mean of its current slopes, RReLU the mean of its sampling range,
    identities (rectlab's and ``nn.Identity``) 1; rectlab activations answer through
    `rectlab.activations.Activation.negative_slope`. He init (He et al. 2015, arXiv 1502.01852) uses it
    for the closed-form gain ``sqrt(2 / (1 + a^2))``.
    """
    if isinstance(module, Activation):
        return module.negative_slope()
    if isinstance(module, nn.Identity):
        return 1.0
    for row in _TORCH_ACTIVATIONS:
        if isinstance(module, row.cls):
            return None if row.slope is None else row.slope(module)
    return None


def function_op(target: Any, kwargs: Mapping[str, Any] | None = None) -> str | None:
    """Op name of a functional activation call (``F.relu``, ``torch.relu_``, ``F.gelu(approximate="tanh")``)."""
    op = _FUNCTION_OPS.get(target)
    if op == "gelu" and (kwargs or {}).get("approximate", "none") == "tanh":
        return "gelu-tanh"
    return op


def method_op(name: Any) -> str | None:
    """Op name of a tensor-method activation call (``x.relu()``, ``x.relu_()``)."""
    return _METHOD_OPS.get(name)


def op_names() -> list[str]:
    """Every op name a `Site` can carry (rectlab's registered activations plus torch's extras)."""
    return sorted(set(ACTIVATIONS.names()) | {row.op for row in _TORCH_ACTIVATIONS} | set(_FUNCTION_OPS.values()))
