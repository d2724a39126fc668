"""Rectifier-aware weight initialization (He et al. 2015) and Xavier/Glorot initialization for comparison.

He et al. 2015, "Delving Deep into Rectifiers" (arXiv 1502.01852), section 2.2: for a conv or linear
layer ``y_l = W_l x_l + b_l`` with ``x_l = f(y_{l-1})``, zero-mean weights independent of the input give
(eq. 7-8) ``Var[y_l] = n_l Var[w_l] E[x_l^2]``. Requiring ``Var[y_l] = Var[y_{l-1}]`` gives
``Var[w_l] = gain^2 / n_l`` with ``gain^2 = Var[y_{l-1}] / E[f(y_{l-1})^2]``. For ReLU ``E[x^2] = Var[y]/2``
(eq. 9), so ``gain^2 = 2`` (eq. 10); for a rectifier with negative slope ``a`` it is ``2 / (1 + a^2)``
(section 2.2, PReLU). The backward case (eq. 13-14) uses ``n_l`` = fan-out and ``E[f'(y)^2]``, which is the
same ``(1 + a^2) / 2`` for every rectifier.

For activations that are not positively homogeneous (ELU, GELU, Swish, Mish, SELU, SmeLU, softplus, GCU,
...) ``E[f(y)^2] / Var[y]`` depends on the scale of ``y``. [`gain`][rectlab.init.gain] evaluates it at the fixed point
we want, ``y ~ N(0, 1)``: ``gain^2 = 1 / E_{z~N(0,1)}[f(z)^2]`` (fan-in) or ``1 / E[f'(z)^2]`` (fan-out), so a
unit-variance pre-activation stays unit-variance from layer to layer. The expectations are computed by
composite Gauss-Legendre quadrature against the normal density (see `_quadrature`; exact to
rounding for kinks at 0 and at multiples of 1/8, about 1e-8 elsewhere). For rectifiers this reproduces
``2 / (1 + a^2)``, and SELU gets gain 1 (the self-normalizing fixed point of Klambauer et al. 2017).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import torch
from torch import Tensor, nn

from .activations.gains import MODES, check_mode, gain, second_moment
from .errors import InputError
from .surgery.analysis import analyze

__all__ = ["LayerInit", "MODES", "gain", "he_init_", "he_plan", "second_moment", "xavier_init_"]

_WEIGHT_LAYERS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)


@dataclass(frozen=True)
class LayerInit:
    """How [`he_init_`][rectlab.init.he_init_] initializes one layer.

    Attributes:
        layer: module path of the conv/linear layer.
        kind: its class name.
        activation: op name of the activation site that consumes its output, ``None`` when none does
            (the classifier, or a layer followed by another linear layer).
        site: index of that [`rectlab.surgery.Site`][rectlab.surgery.Site], or ``None``.
        gain: the gain used (1 without an activation).
        fan: the fan-in or fan-out used.
        std: ``gain / sqrt(fan)``.
        found_by: ``"graph"`` (the fx call graph) or ``"module-order"`` (the next activation module in
            registration order, for layers inside submodules torch.fx could not trace).
    """

    layer: str
    kind: str
    activation: str | None
    site: int | None
    gain: float
    fan: int
    std: float
    found_by: str


def _fan(layer: nn.Module, mode: str) -> int:
    """Fan-in ``k^2 c_in`` or fan-out ``k^2 c_out`` per connection (grouped convs divide by the groups)."""
    w = layer.get_parameter("weight")
    receptive = int(np.prod(w.shape[2:])) if w.dim() > 2 else 1
    groups = getattr(layer, "groups", 1)
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        c_in, c_out = w.shape[0] // groups, w.shape[1]  # transposed weights are (in, out / groups, k...)
    else:
        c_out, c_in = w.shape[0] // groups, w.shape[1]
    return int((c_in if mode == "fan_in" else c_out) * receptive)


def he_plan(
    model: nn.Module,
    mode: str = "fan_in",
    *,
    example_input: Tensor | tuple[Tensor, ...] | None = None,
) -> list[LayerInit]:
    """Which gain [`he_init_`][rectlab.init.he_init_] gives each conv/linear layer, without changing the model.

    Each layer gets the gain of the first activation call site that consumes its output, following the
    torch.fx call graph through BatchNorm, pooling, additions, concatenations and reshapes, and stopping at
    the next conv/linear layer; a layer whose output reaches no activation (the classifier) gets gain 1.

    Args:
        model: any model [`rectlab.surgery.activation_sites`][rectlab.surgery.activation_sites] can analyse.
        mode: ``"fan_in"`` or ``"fan_out"``.
        example_input: optional; only needed when parts of the model cannot be traced.

    Returns:
        One [`LayerInit`][rectlab.init.LayerInit] per conv/linear module, in registration order.
    """
    check_mode(mode)
    analysis = analyze(model, example_input)
    by_layer = dict(_graph_assignments(analysis))
    order = list(model.named_modules())
    plan = []
    for i, (path, layer) in enumerate(order):
        if not isinstance(layer, _WEIGHT_LAYERS):
            continue
        if path in by_layer:
            site, act = by_layer[path]
            found_by = "graph"
        else:
            site, act = _next_activation_by_order(analysis, order, i)
            found_by = "module-order"
        g = 1.0 if act is None else gain(act, mode)
        fan = _fan(layer, mode)
        plan.append(
            LayerInit(
                layer=path,
                kind=type(layer).__name__,
                activation=None if site is None else site.op,
                site=None if site is None else site.index,
                gain=g,
                fan=fan,
                std=g / math.sqrt(fan),
                found_by=found_by,
            )
        )
    return plan


def _graph_assignments(analysis) -> Iterator[tuple[str, tuple]]:
    """(layer path, (site or None, activation module or None)) for every weight layer called in the graph."""
    if analysis.graph is None:
        return
    site_of_node = {analysis.nodes[s.index].name: s for s in analysis.sites if s.index in analysis.nodes}
    seen = set()
    for node in analysis.graph.nodes:
        if node.op != "call_module" or node.target in seen:
            continue
        module = analysis.model.get_submodule(node.target)
        if not isinstance(module, _WEIGHT_LAYERS):
            continue
        seen.add(node.target)
        site = _first_consumer_site(node, site_of_node, analysis)
        yield node.target, (site, None if site is None else analysis.site_module(site))


def _first_consumer_site(start, site_of_node, analysis):
    """Breadth-first over the users of ``start``: the nearest activation site before any other weight layer."""
    frontier, visited = list(start.users), set()
    while frontier:
        nxt = []
        for node in frontier:
            if node in visited:
                continue
            visited.add(node)
            if node.name in site_of_node:
                return site_of_node[node.name]
            if node.op == "call_module" and isinstance(analysis.model.get_submodule(node.target), _WEIGHT_LAYERS):
                continue
            if node.op == "call_module" and node.target in analysis.opaque_nodes:
                first = analysis.opaque_first_site(node.target)
                if first is not None:
                    return first
            nxt.extend(node.users)
        frontier = nxt
    return None


def _next_activation_by_order(analysis, order, i):
    for path, module in order[i + 1 :]:
        if isinstance(module, _WEIGHT_LAYERS):
            return None, None
        site = analysis.site_by_target(path)
        if site is not None:
            return site, module
    return None, None


def _init_tensor_(t: Tensor, std: float, distribution: str, generator: torch.Generator | None) -> None:
    if distribution == "normal":
        nn.init.normal_(t, 0.0, std, generator=generator)
    elif distribution == "uniform":
        bound = math.sqrt(3.0) * std  # same variance as the normal
        nn.init.uniform_(t, -bound, bound, generator=generator)
    else:
        raise InputError(f"distribution must be 'normal' or 'uniform', got {distribution!r}")


@overload
def he_init_(
    model: nn.Module,
    mode: str = ...,
    *,
    example_input: Tensor | tuple[Tensor, ...] | None = ...,
    distribution: str = ...,
    generator: torch.Generator | None = ...,
    return_report: Literal[False] = ...,
) -> nn.Module: ...
@overload
def he_init_(
    model: nn.Module,
    mode: str = ...,
    *,
    example_input: Tensor | tuple[Tensor, ...] | None = ...,
    distribution: str = ...,
    generator: torch.Generator | None = ...,
    return_report: Literal[True],
) -> tuple[nn.Module, list[LayerInit]]: ...
def he_init_(
    model: nn.Module,
    mode: str = "fan_in",
    *,
    example_input: Tensor | tuple[Tensor, ...] | None = None,
    distribution: str = "normal",
    generator: torch.Generator | None = None,
    return_report: bool = False,
) -> nn.Module | tuple[nn.Module, list[LayerInit]]:
    """Initialize every conv/linear layer as He et al. 2015 (arXiv 1502.01852), eq. 10 or eq. 14.

    ``W ~ N(0, gain^2 / fan)`` where ``gain`` is that of the activation consuming the layer's output (see
    [`he_plan`][rectlab.init.he_plan] and [`gain`][rectlab.init.gain]) and ``fan`` is the fan-in ``k^2 c_in``
    (``mode="fan_in"``, forward signal) or fan-out ``k^2 c_out`` (``"fan_out"``, backward signal). Biases are set to
    zero; normalization layers are left alone. The last layer (no activation after it) gets gain 1.

    Args:
        model: the model, changed in place.
        mode: ``"fan_in"`` or ``"fan_out"``.
        example_input: optional; only needed when parts of the model cannot be traced by torch.fx.
        distribution: ``"normal"`` (the paper) or ``"uniform"`` (same variance).
        generator: a ``torch.Generator`` for reproducible draws.
        return_report: also return the list of [`LayerInit`][rectlab.init.LayerInit] (which gain each layer got).

    Returns:
        ``model``, or ``(model, report)`` with ``return_report=True``.
    """
    plan = he_plan(model, mode, example_input=example_input)
    with torch.no_grad():
        for item in plan:
            layer = model.get_submodule(item.layer)
            _init_tensor_(layer.get_parameter("weight"), item.std, distribution, generator)
            bias = getattr(layer, "bias", None)
            if isinstance(bias, Tensor):
                bias.zero_()
    return (model, plan) if return_report else model


def xavier_init_(
    model: nn.Module,
    distribution: str = "uniform",
    *,
    mode: str = "glorot",
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Glorot & Bengio 2010 ("Xavier") init of every conv/linear layer, gain 1, biases zero.

    Args:
        model: the model, changed in place.
        distribution: ``"uniform"`` (Glorot's) or ``"normal"``.
        mode: ``"glorot"``: ``Var[w] = 2 / (fan_in + fan_out)`` (Glorot & Bengio's compromise);
            ``"fan_in"``: ``Var[w] = 1 / fan_in``, the forward-only form that He et al. 2015 (section 2.2,
            Figures 2-3) compare against as "Xavier" (a Gaussian with std ``sqrt(1/n_l)``).
        generator: a ``torch.Generator`` for reproducible draws.

    Returns:
        ``model``.
    """
    if distribution not in ("uniform", "normal"):
        raise InputError(f"distribution must be 'uniform' or 'normal', got {distribution!r}")
    if mode not in ("glorot", "fan_in"):
        raise InputError(f"mode must be 'glorot' or 'fan_in', got {mode!r}")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _WEIGHT_LAYERS):
                fan_in, fan_out = _fan(module, "fan_in"), _fan(module, "fan_out")
                std = math.sqrt(1.0 / fan_in if mode == "fan_in" else 2.0 / (fan_in + fan_out))
                _init_tensor_(module.weight, std, distribution, generator)
                if module.bias is not None:
                    module.bias.zero_()
    return model
