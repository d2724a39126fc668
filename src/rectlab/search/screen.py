"""Screening before any training: reject candidates that cannot be activations, and merge equal ones.

A candidate is **rejected** when, on a probe grid of inputs (float64, every beta at its initial value 1):

* it is **non-finite** (``sqrt(x)`` of a negative input, ``exp(cosh(x))`` overflowing), or its derivative is;
* it is **constant** (``x - x``, ``exp(-beta (x - x)^2)``): no signal passes it;
* it has no usable **He gain** (``E[f(z)^2]`` over z ~ N(0, 1) zero or infinite: see
  [`rectlab.init.gain`][rectlab.init.gain]);
* it **explodes at initialization**: in a random 8-layer, 64-wide MLP initialized with its He gain, the
  activations' second moment or the input gradient grows more than 10^4-fold, or becomes non-finite.

Candidates left are **merged** when they are numerically equal: the same values (to 1e-7 relative) on
the grid at two settings of their parameters (all beta = 1, then all beta = 0.7), so ``x*sigmoid(beta*x)``
and ``sigmoid(beta*x)*x`` merge, while ``x*sigmoid(x)`` stays apart from them. The representative of
a group is its shortest expression.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..activations.gains import gain
from .activation import activation_class
from .expr import evaluate, num_params, render
from .space import Candidate

__all__ = ["PROBE", "Screened", "fingerprint", "reject_reason", "screen", "swish_fit"]

PROBE = torch.cat(
    [
        torch.linspace(-8.0, 8.0, 321, dtype=torch.float64),
        torch.tensor([-1e-3, 1e-3, 0.3183, -2.718, 12.0, -12.0], dtype=torch.float64),
    ]
)
SECOND_BETA = 0.7
EXPLODE = 1e4
DEPTH, WIDTH = 8, 64


def _values(c: Candidate, beta: float, x: torch.Tensor) -> torch.Tensor:
    n = num_params(c.expr)
    return evaluate(c.expr, x, [torch.tensor(beta, dtype=x.dtype)] * n)


def fingerprint(c: Candidate) -> np.ndarray:
    """The candidate's values on `PROBE` at beta = 1 and beta = 0.7 (float64)."""
    with torch.no_grad():
        return torch.cat([_values(c, 1.0, PROBE), _values(c, SECOND_BETA, PROBE)]).numpy()


def _deep_probe(c: Candidate, gain: float) -> str:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, WIDTH, generator=gen, dtype=torch.float64, requires_grad=True)
    h = x
    start = float((x.detach() ** 2).mean())
    betas = [torch.tensor(1.0, dtype=torch.float64)] * num_params(c.expr)
    for layer in range(DEPTH):
        w = torch.randn(WIDTH, WIDTH, generator=gen, dtype=torch.float64) * gain / math.sqrt(WIDTH)
        h = evaluate(c.expr, h @ w.T, betas)
        m = float((h.detach() ** 2).mean())
        if not math.isfinite(m) or m > EXPLODE * start:
            return f"explodes at init (second moment {m:.3g} after layer {layer + 1} of a {DEPTH}-layer He-init MLP)"
    (grad,) = torch.autograd.grad(h.sum(), x)
    g = float((grad**2).mean())
    if not math.isfinite(g) or g > EXPLODE * WIDTH:
        return f"explodes at init (input gradient second moment {g:.3g} through a {DEPTH}-layer He-init MLP)"
    return ""


def reject_reason(c: Candidate) -> str:
    """Why ``c`` cannot be trained (see the module docstring), or ``""`` when it passes."""
    x = PROBE.clone().requires_grad_(True)
    y = _values(c, 1.0, x)
    if not bool(torch.isfinite(y).all()):
        bad = float(x.detach()[~torch.isfinite(y.detach())][0])
        return f"non-finite on the probe grid (e.g. at x = {bad:g})"
    if not y.requires_grad:  # no x in it at all
        return "constant on the probe grid"
    (dy,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    if dy is None or not bool(torch.isfinite(dy).all()):
        return "non-finite derivative on the probe grid"
    yd = y.detach()
    if float(yd.std()) <= 1e-6 * (1.0 + float(yd.abs().mean())):
        return "constant on the probe grid"
    try:
        g = gain(activation_class(render(c.expr))())
    except ValueError as e:
        return f"no He gain ({e})"
    if not (math.isfinite(g) and 1e-3 < g < 1e3):
        return f"He gain {g:.3g} out of range"
    return _deep_probe(c, g)


@dataclass
class Screened:
    """Outcome of `screen`.

    Attributes:
        accepted: one representative per group of numerically equal candidates, in first-seen order.
        aliases: ``{representative text: [texts merged into it]}``.
        rejected: ``{text: reason}``.
        seen: candidates examined.
    """

    accepted: list[Candidate] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    seen: int = 0


def _key(v: np.ndarray) -> bytes:
    scale = float(np.abs(v).max()) + 1.0
    return np.round(v / (1e-7 * scale)).astype(np.int64).tobytes()


def screen(candidates: Iterable[Candidate], limit: int | None = None, into: Screened | None = None) -> Screened:
    """Reject and merge ``candidates`` (see the module docstring), keeping at most ``limit`` representatives.

    Args:
        candidates: in the order of preference (a representative is replaced by a later, shorter equal one).
        limit: stop once this many distinct candidates are accepted (for random sampling).
        into: continue a previous screening (its groups and rejections are kept).
    """
    out = into or Screened()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only contend (50x slower on a busy 2-core machine)
    try:
        _screen(candidates, limit, out)
    finally:
        torch.set_num_threads(threads)
    return out


def _screen(candidates: Iterable[Candidate], limit: int | None, out: Screened) -> None:
    index = {_key(fingerprint(c)): i for i, c in enumerate(out.accepted)}
    known = {c.text for c in out.accepted} | set(out.rejected) | {a for v in out.aliases.values() for a in v}
    for c in candidates:
        text = c.text
        if text in known:
            continue
        known.add(text)
        out.seen += 1
        with np.errstate(all="ignore"):
            reason = reject_reason(c)
        if reason:
            out.rejected[text] = reason
            continue
        key = _key(fingerprint(c))
        if key in index:
            rep = out.accepted[index[key]]
            if len(text) < len(rep.text):  # the shorter expression represents the group
                out.accepted[index[key]] = c
                out.aliases[text] = [rep.text, *out.aliases.pop(rep.text, [])]
            else:
                out.aliases.setdefault(rep.text, []).append(text)
            continue
        index[key] = len(out.accepted)
        out.accepted.append(c)
        if limit is not None and len(out.accepted) >= limit:
            break


def swish_fit(c: Candidate, lo: float = -6.0, hi: float = 6.0) -> tuple[float, float, float]:
    """How close ``c`` is, at initialization (beta = 1), to a Swish ``a * x * sigmoid(b * x)`` with a, b > 0.

    Returns:
        ``(relative RMS error, a, b)`` of the best fit over ``x`` in ``[lo, hi]`` (b searched in [0.1, 10]).
    """
    from scipy import optimize  # lazy: scipy.optimize is slow to import and only this fit needs it

    x = torch.linspace(lo, hi, 481, dtype=torch.float64)
    with torch.no_grad():
        f = _values(c, 1.0, x).numpy()
    xs = x.numpy()
    norm = float(np.sqrt(np.mean(f**2)))
    if not np.all(np.isfinite(f)) or norm == 0:
        return math.inf, math.nan, math.nan

    def err(log_b: float) -> tuple[float, float]:
        g = xs / (1.0 + np.exp(-math.exp(log_b) * xs))
        a = float(f @ g / (g @ g))
        return float(np.sqrt(np.mean((f - a * g) ** 2))) / norm, a

    grid = np.linspace(math.log(0.1), math.log(10.0), 61)
    best = grid[int(np.argmin([err(b)[0] for b in grid]))]
    res = optimize.minimize_scalar(lambda b: err(b)[0], bounds=(best - 0.08, best + 0.08), method="bounded")
    e, a = err(float(res.x))
    if a <= 0:
        return math.inf, a, math.exp(float(res.x))
    return e, a, math.exp(float(res.x))
