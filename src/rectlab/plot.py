"""Look at activations and at what a study measured: :func:`activation`, :func:`slopes`, :func:`dead_neurons`.

:func:`activation` draws rectlab's modules themselves (their plain-torch reference form) and, with
``derivative=True``, the gradient autograd computes through them, which is what training uses. Where that
gradient is not the derivative of the forward function it is a surrogate, and the figure shows both: HeLU
(Kimhi et al. 2024) is ReLU in the forward pass, but its backward lets the gradient through for
``x > -alpha``. The check is numerical (central differences of the forward), so it covers any activation,
a plugin's included.

:func:`slopes` and :func:`dead_neurons` draw the per-layer plots of the reports (the learned PReLU slopes,
He et al. 2015 Table 1; dead units per layer over training, Liu et al. 2022) for any study directory.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .activations import parse_spec

__all__ = ["ActivationCurve", "activation", "activation_curve", "dead_neurons", "slopes"]

# Where autograd's gradient and the forward's numerical derivative may differ at isolated kinks (ReLU at 0).
_KINK_POINTS = 2
_ALIASES = {"a": {"prelu": "init", "prelu-shared": "init", "leaky-relu": "negative_slope"}}


@dataclass(frozen=True)
class ActivationCurve:
    """One activation sampled on a grid.

    Attributes:
        label: legend text (name and parameters).
        x, y: the inputs and ``f(x)``.
        grad: ``df/dx`` as autograd computes it through the module (what training uses).
        forward_derivative: central differences of the forward ``f``.
        surrogate: True when ``grad`` differs from ``forward_derivative`` beyond isolated kinks: the
            module's backward is a surrogate gradient (HeLU's shifted threshold).
    """

    label: str
    x: Tensor
    y: Tensor
    grad: Tensor
    forward_derivative: Tensor
    surrogate: bool


def _module(spec: str | nn.Module, params: Mapping[str, Any]) -> tuple[nn.Module, str]:
    from . import activations

    if isinstance(spec, nn.Module):
        return spec, type(spec).__name__
    name, own = parse_spec(spec)
    cls = activations.get(name)
    accepted = set(inspect.signature(cls).parameters)
    shared = {_ALIASES.get(k, {}).get(name, k): v for k, v in params.items()}  # only those this one takes
    merged = {**{k: v for k, v in shared.items() if k in accepted}, **own}
    kwargs = dict(merged)
    if issubclass(cls, activations.Activation):
        kwargs.setdefault("backend", "torch")
    try:
        module = activations.create(name, channels=1, **kwargs)
    except TypeError as e:
        takes = ", ".join(sorted(accepted - {"inplace", "backend"})) or "nothing"
        raise ValueError(f"{e}; {name} takes: {takes}") from None
    shown = ", ".join(f"{k}={v}" for k, v in merged.items())
    return module, f"{name} ({shown})" if shown else name


def _check_shared(items: Sequence[str | nn.Module], params: Mapping[str, Any]) -> None:
    """A shared parameter no named activation takes is a typo, not something to ignore."""
    from . import activations

    names = [parse_spec(s)[0] for s in items if isinstance(s, str)]
    for key in params:
        if not any(_ALIASES.get(key, {}).get(n, key) in inspect.signature(activations.get(n)).parameters
                   for n in names):
            raise ValueError(f"no activation among {', '.join(names)} takes the parameter {key!r}")


def activation_curve(spec: str | nn.Module, params: Mapping[str, Any] | None = None,
                     x_range: tuple[float, float] = (-4.0, 4.0), points: int = 801) -> ActivationCurve:
    """Sample one activation, its autograd gradient and its forward's numerical derivative.

    Args:
        spec: a registered name, optionally with parameters (``"smelu:beta=0.5"``), or a module.
        params: constructor parameters (``{"beta": 2.0}``; ``a`` stands for PReLU's ``init`` and LeakyReLU's
            ``negative_slope``).
        x_range, points: the grid.
    """
    module, label = _module(spec, params or {})
    module = module.double().eval()  # evaluation mode: RReLU shows its mean slope
    lo, hi = x_range
    if not hi > lo or points < 3:
        raise ValueError(f"x_range must be increasing and points >= 3, got {x_range} and {points}")
    x = torch.linspace(lo, hi, points, dtype=torch.float64).reshape(-1, 1)  # (N, C=1)
    xg = x.clone().requires_grad_(True)
    y = module(xg)
    (grad,) = torch.autograd.grad(y.sum(), xg)
    h = 1e-6
    with torch.no_grad():
        fwd = (module(x + h) - module(x - h)) / (2 * h)
        # Decide "surrogate" on a finer grid, so a narrow hysteresis band (HeLU's alpha) is not missed.
        fine = torch.linspace(lo, hi, 20 * points + 1, dtype=torch.float64).reshape(-1, 1)
        fine_fwd = (module(fine + h) - module(fine - h)) / (2 * h)
    fine_g = fine.clone().requires_grad_(True)
    (fine_grad,) = torch.autograd.grad(module(fine_g).sum(), fine_g)
    mismatch = int(((fine_grad - fine_fwd).abs() > 1e-3).sum())
    return ActivationCurve(label, x.flatten(), y.detach().flatten(), grad.flatten(), fwd.flatten(),
                           mismatch > _KINK_POINTS)


def activation(
    specs: str | nn.Module | Sequence[str | nn.Module],
    *,
    params: Mapping[str, Any] | None = None,
    derivative: bool = False,
    x_range: tuple[float, float] = (-4.0, 4.0),
    points: int = 801,
    out: str | Path | None = None,
    title: str | None = None,
) -> Any:
    """Plot one or several activations (and their derivatives) on one figure.

    Args:
        specs: names (``"relu"``, ``"smelu:beta=0.5"``), modules, or a list of them.
        params: parameters for every named activation that takes them (``{"a": 0.1}``).
        derivative: add a panel with ``df/dx``: autograd's gradient (solid) and, where the backward is a
            surrogate, the forward's own derivative (dotted).
        x_range, points: the input grid.
        out: write the figure there (``.png``, ``.svg``, ``.pdf``); the figure is returned either way.
        title: figure title.

    Returns:
        The matplotlib ``Figure``.

    Example:
        >>> fig = activation(["relu", "helu", "smelu:beta=0.5"], derivative=True)     # doctest: +SKIP
    """
    from .report.plots import pyplot

    items = [specs] if isinstance(specs, (str, nn.Module)) else list(specs)
    if not items:
        raise ValueError("name at least one activation, e.g. relu or smelu:beta=0.5")
    _check_shared(items, params or {})
    curves = [activation_curve(s, params, x_range, points) for s in items]
    plt = pyplot()
    fig, axes = plt.subplots(1, 2 if derivative else 1, figsize=(11 if derivative else 6, 4.2), squeeze=False)
    colors = plt.get_cmap("tab10")
    for i, c in enumerate(curves):
        color = colors(i % 10)
        axes[0][0].plot(c.x, c.y, color=color, lw=1.8, label=c.label)
        if derivative:
            ax = axes[0][1]
            note = " backward (surrogate gradient)" if c.surrogate else ""
            ax.plot(c.x, c.grad, color=color, lw=1.8, label=f"{c.label}{note}")
            if c.surrogate:
                ax.plot(c.x, c.forward_derivative, color=color, lw=1.4, ls=":", label=f"{c.label}: d/dx of forward")
    axes[0][0].set(title="f(x)", xlabel="x")
    if derivative:
        axes[0][1].set(title="df/dx (autograd, as used in training)", xlabel="x")
    for ax in axes[0]:
        ax.axhline(0, color="gray", lw=0.6)
        ax.axvline(0, color="gray", lw=0.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    return fig


# -- per-layer plots of a study (thin wrappers over the report's plot functions) ---------------------------


def _results(study: Any) -> Any:
    from .report import collect

    return collect(study) if isinstance(study, (str, Path)) else study


def _out(study: Any, out: str | Path | None, name: str) -> Path:
    if out is not None:
        return Path(out)
    if isinstance(study, (str, Path)):
        return Path(study) / "plots" / name
    raise ValueError("pass out='file.png' when plotting collected results")


def slopes(study: Any, out: str | Path | None = None, *, over_training: bool = False) -> Path:
    """The learned PReLU slope (or Swish beta) per layer, one line per cell (He et al. 2015, Table 1).

    Args:
        study: a study directory (or :func:`rectlab.report.collect`'s result).
        out: the image to write (default ``DIR/plots/slopes_per_layer.png`` / ``slopes_over_training.png``).
        over_training: one line per layer over epochs instead (needs the study's ``probes = ["slopes"]``).

    Returns:
        The path written.
    """
    from .report.plots import layer_curves, layer_profile
    from .reproduce.evidence import site_curves

    results = _results(study)
    if over_training:
        per_cell = {c.label: site_curves(c, "slope") for c in results.cells}
        per_cell = {k: v for k, v in per_cell.items() if v}
        if not per_cell:
            raise ValueError("no per-epoch slopes in this study: add probes = [\"slopes\"] to its [study] table")
        return layer_curves(per_cell, _out(study, out, "slopes_over_training.png"),
                            title="Learned slope per layer over training", ylabel="slope a / beta", zero_line=True)
    per_cell: dict[str, dict[str, list[float]]] = {}
    for c in results.cells:
        layers: dict[str, list[float]] = {}
        for run in c.runs:
            for row in run.get("extras", {}).get("slopes", []):
                layers.setdefault(row["layer"], []).append(float(row["mean"]))
        if layers:
            per_cell[c.label] = layers
    if not per_cell:
        raise ValueError("no learned slopes in this study: its activations have no learned parameters (use prelu, "
                         "prelu-shared or swish-learnable)")
    return layer_profile(per_cell, _out(study, out, "slopes_per_layer.png"),
                         title="Learned activation parameter per layer (bars: min–max over seeds)",
                         ylabel="slope a / beta (channel mean)", zero_line=True)


def dead_neurons(study: Any, out: str | Path | None = None, *, dynamic: bool = False) -> Path:
    """Dead units per layer over training, one panel per cell (needs the study's ``probes = ["dead-neurons"]``).

    Args:
        study: a study directory (or :func:`rectlab.report.collect`'s result).
        out: the image to write (default ``DIR/plots/dead_neurons.png``).
        dynamic: the dynamic dead neuron rate (per input; Liu et al. 2022) instead of never-firing units.
    """
    from .report.plots import layer_curves
    from .reproduce.evidence import site_curves

    results = _results(study)
    prefix = "dnr_dynamic" if dynamic else "dnr"
    per_cell = {c.label: site_curves(c, prefix) for c in results.cells}
    per_cell = {k: v for k, v in per_cell.items() if v}
    if not per_cell:
        raise ValueError("no dead-neuron metrics in this study: add probes = [\"dead-neurons\"] to its [study] table "
                         "(or use rectlab compare ... --tensorboard to watch them)")
    what = "dynamic dead neuron rate" if dynamic else "fraction of channels dead"
    return layer_curves(per_cell, _out(study, out, "dead_neurons.png"), title="Dead units per layer", ylabel=what)
