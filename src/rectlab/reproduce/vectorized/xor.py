"""XOR with a single PReLU unit (Pinto & Tavares 2024, "PReLU: Yet Another Single-Layer Solution to the XOR
Problem", arXiv 2409.10821), vectorized: every trial at every learning rate trains at once as one row of
batched parameter tensors, with a batched Adam, so 100 trials x 13 learning rates x 300 epochs take seconds.

Models (target x1 XOR x2 in {0, 1}, mean squared error on the raw output, full batch of the 4 points,
so one epoch is one Adam step):

* ``prelu``: ``y = prelu(w1 x1 + w2 x2; a)``, three parameters (w1, w2, a); no bias, as in the paper's
  main experiment. ``w = (1, -1), a = -1`` gives ``|x1 - x2|``, the exact XOR for inputs in {0, 1}
  (halve the weights for inputs in {-1, 1}: the paper's Figure 1).
* ``prelu-bias``: the same with a bias (four parameters); the paper reports it as a separate experiment.
* ``gcu``: ``y = gcu(w1 x1 + w2 x2 + b)`` with ``gcu(z) = z cos z`` (Noel et al. 2021), three parameters.
* ``mlp-tanh`` / ``mlp-relu``: a 2-2-1 perceptron with ``tanh`` or ReLU hidden units and a linear output
  (nine parameters); the paper does not state its MLP's hidden activation, so both are run.

Inputs are ``"binary"`` ({0, 1}^2, the default: the paper's Figure 1 solves XOR on {0, 1} with
``w = (1, -1), a = -1``) or ``"bipolar"`` ({-1, 1}^2, where the same unit needs halved weights). The
encoding matters a lot for the bias-free PReLU unit, so the reproduction runs both. Initialization
follows PyTorch's defaults (``nn.Linear``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases;
``nn.PReLU``: a = 0.25). A trial succeeds when all four
outputs fall on the right side of 0.5 after the last epoch. The same ``trials`` initial parameter
draws are used at every learning rate (common random numbers), so differences between learning rates
are not init noise.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...activations import functional as AF
from ...errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["XOR_INPUTS", "XOR_MODELS", "XorResult", "XorSetup", "adam_step", "load_setup", "run_xor"]

XOR_INPUTS = {
    "binary": torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64),
    "bipolar": torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64),
}
XOR_Y = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)


@dataclass(frozen=True)
class XorSetup:
    """One XOR experiment.

    Attributes:
        trials: independent initializations per (model, learning rate); the paper uses 100.
        epochs: Adam steps (full batch); the paper uses 300.
        lrs: learning rates to sweep.
        models: names from `XOR_MODELS`.
        inputs: "bipolar" ({-1, 1}) or "binary" ({0, 1}) input encoding.
        seed: seeds the initial parameter draws.
        betas, eps: Adam's hyperparameters (PyTorch defaults).
    """

    trials: int = 100
    epochs: int = 300
    lrs: tuple[float, ...] = tuple(10.0 ** (k / 3) for k in range(-9, 4))
    models: tuple[str, ...] = ("prelu", "gcu", "mlp-tanh", "mlp-relu", "prelu-bias")
    inputs: str = "binary"
    seed: int = 0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.trials < 1 or self.epochs < 1:
            raise InputError(f"trials and epochs must be >= 1, got {self.trials} and {self.epochs}")
        if not self.lrs or any(lr <= 0 for lr in self.lrs):
            raise InputError(f"lrs must be a non-empty list of positive learning rates, got {self.lrs}")
        if self.inputs not in XOR_INPUTS:
            raise InputError(f"inputs must be one of {', '.join(XOR_INPUTS)}, got {self.inputs!r}")
        unknown = [m for m in self.models if m not in XOR_MODELS]
        if unknown:
            raise InputError(f"unknown XOR model(s) {unknown}; known: {', '.join(XOR_MODELS)}")


@dataclass(frozen=True)
class _XorModel:
    n_params: int
    init: Callable[[torch.Generator, int], dict[str, Tensor]]
    forward: Callable[[dict[str, Tensor], Tensor], Tensor]  # params (n rows), x (4, 2) -> (n, 4)
    description: str


def _uniform(gen: torch.Generator, shape: tuple[int, ...], bound: float) -> Tensor:
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound


_B = 1 / math.sqrt(2)  # nn.Linear's bound for fan_in = 2


def _prelu_init(gen: torch.Generator, n: int) -> dict[str, Tensor]:
    return {"w": _uniform(gen, (n, 2), _B), "a": torch.full((n,), 0.25, dtype=torch.float64)}


def _prelu_bias_init(gen: torch.Generator, n: int) -> dict[str, Tensor]:
    return {**_prelu_init(gen, n), "b": _uniform(gen, (n,), _B)}


def _gcu_init(gen: torch.Generator, n: int) -> dict[str, Tensor]:
    return {"w": _uniform(gen, (n, 2), _B), "b": _uniform(gen, (n,), _B)}


def _mlp_init(gen: torch.Generator, n: int) -> dict[str, Tensor]:
    return {
        "w1": _uniform(gen, (n, 2, 2), _B),
        "b1": _uniform(gen, (n, 2), _B),
        "w2": _uniform(gen, (n, 2), _B),
        "b2": _uniform(gen, (n,), _B),
    }


def _prelu_forward(p: dict[str, Tensor], x: Tensor) -> Tensor:
    z = p["w"] @ x.T
    if "b" in p:
        z = z + p["b"][:, None]
    return AF.prelu(z, p["a"], dim=0)  # one slope per row (trial)


def _gcu_forward(p: dict[str, Tensor], x: Tensor) -> Tensor:
    return AF.gcu(p["w"] @ x.T + p["b"][:, None])


def _mlp_forward(hidden: Callable[[Tensor], Tensor]) -> Callable[[dict[str, Tensor], Tensor], Tensor]:
    def forward(p: dict[str, Tensor], x: Tensor) -> Tensor:
        h = hidden(torch.einsum("nij,kj->nki", p["w1"], x) + p["b1"][:, None, :])  # (n, 4, 2)
        return (h * p["w2"][:, None, :]).sum(-1) + p["b2"][:, None]

    return forward


XOR_MODELS: dict[str, _XorModel] = {
    "prelu": _XorModel(3, _prelu_init, _prelu_forward, "single PReLU unit, no bias (w1, w2, a)"),
    "prelu-bias": _XorModel(4, _prelu_bias_init, _prelu_forward, "single PReLU unit with a bias"),
    "gcu": _XorModel(3, _gcu_init, _gcu_forward, "single GCU unit z·cos z (w1, w2, b)"),
    "mlp-tanh": _XorModel(9, _mlp_init, _mlp_forward(torch.tanh), "2-2-1 MLP, tanh hidden units, linear output"),
    "mlp-relu": _XorModel(9, _mlp_init, _mlp_forward(torch.relu), "2-2-1 MLP, ReLU hidden units, linear output"),
}


def adam_step(
    params: dict[str, Tensor],
    grads: dict[str, Tensor],
    state: dict[str, Any],
    lr: Tensor,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> None:
    """One Adam step (Kingma & Ba 2015, as ``torch.optim.Adam``) on row-batched parameters, in place.

    Args:
        params, grads: ``{name: (rows, ...)}`` tensors.
        state: ``{"t": int, "m": {...}, "v": {...}}``; created on the first call when empty.
        lr: learning rate per row, shape (rows,).
    """
    b1, b2 = betas
    if not state:
        state.update(
            t=0,
            m={k: torch.zeros_like(v) for k, v in params.items()},
            v={k: torch.zeros_like(v) for k, v in params.items()},
        )
    state["t"] += 1
    t = state["t"]
    for k, p in params.items():
        g = grads[k]
        m = state["m"][k].mul_(b1).add_(g, alpha=1 - b1)
        v = state["v"][k].mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (v / (1 - b2**t)).sqrt_().add_(eps)
        step = lr.view(-1, *([1] * (p.dim() - 1))) / (1 - b1**t)
        p.sub_(step * m / denom)


@dataclass
class XorResult:
    """Outcome of `run_xor`.

    Attributes:
        setup: the experiment.
        success: ``{model: [successful trials per learning rate]}``.
        median_loss: ``{model: [median final loss per learning rate]}`` (NaN where training diverged).
        n_params: ``{model: parameter count}``.
        outcomes: ``{model: [[trial solved XOR] per trial] per learning rate}`` (trial i starts from the same
            initial draw at every learning rate).
    """

    setup: XorSetup
    success: dict[str, list[int]] = field(default_factory=dict)
    median_loss: dict[str, list[float]] = field(default_factory=dict)
    n_params: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, list[list[bool]]] = field(default_factory=dict)

    def rate(self, model: str) -> list[float]:
        return [s / self.setup.trials for s in self.success[model]]

    def full_success_lrs(self, model: str) -> list[float]:
        """The learning rates at which every trial succeeded."""
        return [lr for lr, s in zip(self.setup.lrs, self.success[model]) if s == self.setup.trials]

    def to_json(self) -> dict[str, Any]:
        return {
            "setup": asdict(self.setup),
            "success": self.success,
            "median_loss": self.median_loss,
            "n_params": self.n_params,
        }


def run_xor(setup: XorSetup) -> XorResult:
    """Train every model at every learning rate for ``setup.trials`` initializations; see the module docstring."""
    result = XorResult(setup)
    n_lr, trials = len(setup.lrs), setup.trials
    lr = torch.tensor(setup.lrs, dtype=torch.float64).repeat_interleave(trials)  # row = (lr index, trial)
    x = XOR_INPUTS[setup.inputs]
    for name in setup.models:
        model = XOR_MODELS[name]
        gen = torch.Generator().manual_seed(setup.seed)
        init = model.init(gen, trials)
        params = {k: v.repeat(n_lr, *([1] * (v.dim() - 1))).requires_grad_(True) for k, v in init.items()}
        state: dict[str, Any] = {}
        for _ in range(setup.epochs):
            out = model.forward(params, x)
            loss = ((out - XOR_Y) ** 2).mean(1)  # per row
            grads = torch.autograd.grad(loss.sum(), list(params.values()))  # rows are independent
            with torch.no_grad():
                adam_step(params, dict(zip(params, grads)), state, lr, setup.betas, setup.eps)
        with torch.no_grad():
            out = model.forward(params, x)
            loss = ((out - XOR_Y) ** 2).mean(1).view(n_lr, trials)
            correct = ((out > 0.5) == (XOR_Y > 0.5)).all(1) & torch.isfinite(out).all(1)
        result.success[name] = correct.view(n_lr, trials).sum(1).tolist()
        result.outcomes[name] = correct.view(n_lr, trials).tolist()
        result.median_loss[name] = [float(row.nanmedian()) for row in loss]
        result.n_params[name] = model.n_params
    return result


def load_setup(path: str | Path, scale: str) -> XorSetup:
    """Read ``[xor]`` and the ``[scales.SCALE]`` overrides of ``rectlab/specs/xor-prelu.toml``.

    Raises:
        ValueError: for unknown keys or a missing scale (the message lists the valid ones).
    """
    raw = tomllib.loads(Path(path).read_text())
    unknown_sections = set(raw) - {"study", "xor", "scales"}
    if unknown_sections:
        raise InputError(f"{path}: unknown section(s) {sorted(unknown_sections)}; valid: [study], [xor], [scales.NAME]")
    values = dict(raw.get("xor", {}))
    scales = raw.get("scales", {})
    if scale not in scales:
        raise InputError(f"{path}: no [scales.{scale}] table; valid scales: {', '.join(scales) or 'none'}")
    values.update(scales[scale])
    valid = [f for f in XorSetup.__dataclass_fields__]
    bad = [k for k in values if k not in valid]
    if bad:
        raise InputError(f"{path}: unknown key(s) {bad} for the XOR setup; valid keys: {', '.join(valid)}")
    for key in ("lrs", "models", "betas"):
        if key in values:
            values[key] = tuple(values[key])
    return XorSetup(**values)


def save(result: XorResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_json(), indent=1))
