"""What counts as an activation, which calls are activation sites, their op names, and the :class:`Site` record.

This module owns the one table of activation kinds: :func:`module_op` (is this module an activation, and
which), :data:`GATING_MODULES` (sigmoid/tanh: observed by probes, never edited) and :func:`negative_slope`
(the piecewise-linear rectifiers). Probes, optimizer parameter groups and He init import them from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..activations import ACTIVATIONS, Activation
from ..errors import RectlabError

__all__ = [
    "GATING_MODULES",
    "Site",
    "SurgeryError",
    "SurgeryWarning",
    "format_sites",
    "module_op",
    "negative_slope",
    "op_names",
    "original_type",
]


class SurgeryError(RectlabError, RuntimeError):
    """A requested edit cannot be made; the message names the submodule and what to pass instead."""


class SurgeryWarning(UserWarning):
    """Something the user should know about an analysis or edit (untraceable parts, nothing to erase)."""


class _TorchActivation(NamedTuple):
    cls: type[nn.Module]
    op: str
    slope: Callable[[nn.Module], float | None] | None = None  # piecewise-linear rectifiers: slope for x < 0


# The one table of torch.nn's activation modules: what :func:`module_op` names, what a probe observes and
# :func:`rectlab.optim.param_groups` keeps out of weight decay, and (for the piecewise-linear rectifiers) the
# negative-side slope He init's closed-form gain needs. nn.GELU is named from its ``approximate`` argument in
# :func:`module_op`. rectlab's own :class:`~rectlab.activations.Activation` classes name themselves.
_TORCH_ACTIVATIONS: tuple[_TorchActivation, ...] = (
    # torch.ao's quantized ReLU6 subclasses nn.ReLU, so only nn.ReLU itself has ReLU's slope.
    _TorchActivation(nn.ReLU, "relu", lambda m: 0.0 if type(m) is nn.ReLU else None),
    _TorchActivation(nn.ReLU6, "relu6"),
    _TorchActivation(nn.LeakyReLU, "leaky-relu", lambda m: float(m.negative_slope)),
    _TorchActivation(nn.PReLU, "prelu", lambda m: float(m.weight.detach().float().mean())),
    _TorchActivation(nn.RReLU, "rrelu", lambda m: (m.lower + m.upper) / 2),
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
nonlinearities a probe still observes (see :func:`rectlab.probes.probe_sites`)."""


def _function_ops() -> dict[Any, str]:
    pairs = {
        "relu": ("relu", "relu_"),
        "relu6": ("relu6",),
        "leaky-relu": ("leaky_relu", "leaky_relu_"),
        "prelu": ("prelu",),
        "rrelu": ("rrelu", "rrelu_"),
        "elu": ("elu", "elu_"),
        "celu": ("celu", "celu_"),
        "selu": ("selu", "selu_"),
        "gelu": ("gelu",),
        "silu": ("silu",),
        "mish": ("mish",),
        "softplus": ("softplus",),
        "hardswish": ("hardswish",),
    }
    table: dict[Any, str] = {}
    for op, fnames in pairs.items():
        for namespace in (F, torch):
            for fname in fnames:
                fn = getattr(namespace, fname, None)
                if fn is not None:
                    table[fn] = op
    return table


_FUNCTION_OPS = _function_ops()
_METHOD_OPS = {"relu": "relu", "relu_": "relu"}
_ORIGINAL_TYPE = "rectlab_original_type"


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
    :meth:`~rectlab.activations.Activation.negative_slope`. He init (He et al. 2015, arXiv 1502.01852) uses it
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


def _node_op(node: fx.Node, root: nn.Module) -> str | None:
    if node.op == "call_module":
        return module_op(root.get_submodule(node.target))
    if node.op == "call_function":
        op = _FUNCTION_OPS.get(node.target)
        if op == "gelu" and node.kwargs.get("approximate", "none") == "tanh":
            return "gelu-tanh"
        return op
    if node.op == "call_method":
        return _METHOD_OPS.get(node.target)
    return None


def op_names() -> list[str]:
    """Every op name a :class:`Site` can carry (rectlab's registered activations plus torch's extras)."""
    return sorted(set(ACTIVATIONS.names()) | {row.op for row in _TORCH_ACTIVATIONS} | set(_FUNCTION_OPS.values()))


def original_type(module: nn.Module) -> type[nn.Module]:
    """The class a module had before surgery rewrote its forward into a ``GraphModule`` (else its class)."""
    if isinstance(module, fx.GraphModule):
        return module.meta.get(_ORIGINAL_TYPE, type(module))
    return type(module)


@dataclass(frozen=True)
class Site:
    """One activation call site.

    Attributes:
        index: position in call order over the whole forward pass (0-based).
        op: registry-style op name (``"relu"``, ``"leaky-relu"``, ``"relu6"``, ``"identity"``, ...).
        kind: ``"module"`` (an activation module is called), ``"function"`` (``F.relu(x)``) or
            ``"method"`` (``x.relu()``).
        owner: path of the module whose ``forward`` makes the call (``""``: the model itself). For
            torchvision's ResNet-18 both ``self.relu`` calls of a block are owned by ``"layer1.0"``.
        owner_type: class name of the owner (its class before any surgery).
        target: path of the called module for module sites, else ``None``. Several sites share a target
            when one module is called several times.
        call: for module sites, how many earlier sites call the same target (0 for the first call).
        node: the ``torch.fx`` node name, or ``None`` for sites found without tracing.
        channels: channel count at the site (dim 1 of its output) from the example input, else ``None``.
        shape: output shape at the site from the example input, else ``None``.
        scope: paths of the modules whose ``forward`` was running at the call, outermost first, ending
            with ``owner`` (empty for the model itself).
        traced: ``True`` when found in the fx graph; ``False`` when found by module enumeration inside a
            submodule fx could not trace.
    """

    index: int
    op: str
    kind: str
    owner: str
    owner_type: str
    target: str | None
    call: int
    node: str | None
    channels: int | None
    shape: tuple[int, ...] | None
    scope: tuple[str, ...]
    traced: bool

    def __str__(self) -> str:
        where = self.target if self.kind == "module" else f"{self.owner or '<model>'}: {self.node}"
        if self.kind == "module" and self.call:
            where += f" (call {self.call})"
        ch = "" if self.channels is None else f" C={self.channels}"
        return f"#{self.index} {self.op} [{self.kind}] {where}{ch}"


def format_sites(sites: Iterable[Site]) -> str:
    """A plain-text table of sites: index, op, kind, owner, target or node, channels."""
    rows = [("#", "op", "kind", "owner", "target / node", "C")]
    for s in sites:
        what = s.target if s.kind == "module" else s.node
        if s.kind == "module" and s.call:
            what = f"{what} (call {s.call})"
        rows.append(
            (str(s.index), s.op, s.kind, s.owner or "<model>", str(what), "" if s.channels is None else str(s.channels))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
