"""Learning a planted convolutional filter (Du, Lee & Tian 2017, "When is a Convolutional Filter Easy To Learn?",
arXiv 1709.06129), vectorised: every trial is one row of a batched tensor program, so hundreds of students
learn at once.

Model (teacher and student of the same form): a 1-D input ``X`` of length ``d = (k - 1) s + p``, its ``k``
patches ``Z_i = X[i s : i s + p]`` (filter size ``p``, stride ``s``; overlap ``1 - s / p``), or, to control
the *closeness* of patches directly, ``Z_i = sqrt(rho) U + sqrt(1 - rho) V_i`` with ``U, V_i`` i.i.d. (every
pair of patches then has entrywise correlation ``rho``; the paper wants patches "highly correlated"), and

    f(X, w) = (1 / k) sum_i relu(w . Z_i)            (ReLU conv + average pooling)

The teacher's filter ``w*`` is planted; the student starts from a random ``w_0`` and minimises the squared
loss ``(f(X, w) - f(X, w*))^2 / 2`` by gradient descent on a fixed sample (``gd``) or by SGD on fresh
mini-batches (``sgd``). Inputs are i.i.d. with unit variance from ``gaussian``, ``uniform``, ``laplace``
or ``rademacher`` (+-1: the least smooth). ``w*`` and ``w_0`` are uniform on the unit sphere, drawn
per trial; the same draws are reused across conditions (common random numbers), so conditions are
compared trial by trial. The gradient is written out (no autograd):
``grad = E[(f(w) - y) (1/k) sum_i 1[w . Z_i > 0] Z_i]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...errors import InputError
from ..setup_file import load_setup_table

__all__ = [
    "DISTRIBUTIONS",
    "ConvSetup",
    "Trajectories",
    "load_setup",
    "make_patches",
    "patches",
    "sample_inputs",
    "teacher",
    "train_students",
]

DISTRIBUTIONS = ("gaussian", "uniform", "laplace", "rademacher")


@dataclass(frozen=True)
class ConvSetup:
    """One conv-filter experiment (see ``rectlab/specs/conv-filter.toml``).

    Attributes:
        trials: random (w*, w0) pairs per condition.
        filter_size, patches: p and k.
        strides: the strides compared (s = p: no overlap; smaller: overlapping patches).
        closeness: patch correlations rho > 0 compared with independent patches (rho = 0), without overlap.
        distributions: input distributions (the first should be ``gaussian``, the reference).
        gd_steps, gd_lr, gd_samples: gradient descent on a fixed sample of ``gd_samples`` inputs.
        sgd_steps, sgd_batch, sgd_lr_small, sgd_lr_large, sgd_switch: SGD on fresh batches with one small
            learning rate, one large one, or two stages (large for the first ``sgd_switch`` fraction of steps,
            then small); ``sgd_distribution`` and ``sgd_stride`` fix its input; ``sgd_noise`` is the standard
            deviation of Gaussian noise added to the teacher's outputs (without it the problem interpolates: every
            sample's gradient vanishes at ``w*``, so even a large constant learning rate converges exactly).
        success_tol: a trial succeeds when ``|w - w*| / |w*|`` ends below this.
        speed_tol: the distance at which "steps to converge" is counted.
        eval_every: steps between recorded distances.
        seed: seeds every draw.
    """

    trials: int = 200
    filter_size: int = 16
    patches: int = 8
    strides: tuple[int, ...] = (16, 8, 2)
    closeness: tuple[float, ...] = (0.5, 0.9)
    distributions: tuple[str, ...] = DISTRIBUTIONS
    gd_steps: int = 1500
    gd_lr: float = 0.5
    gd_samples: int = 4096
    sgd_steps: int = 3000
    sgd_batch: int = 16
    sgd_lr_small: float = 0.02
    sgd_lr_large: float = 0.5
    sgd_switch: float = 0.3
    sgd_distribution: str = "uniform"
    sgd_stride: int = 16
    sgd_noise: float = 0.05
    success_tol: float = 0.01
    speed_tol: float = 0.05
    eval_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [d for d in (*self.distributions, self.sgd_distribution) if d not in DISTRIBUTIONS]
        if bad:
            raise InputError(f"unknown input distribution(s) {bad}; choose from {', '.join(DISTRIBUTIONS)}")
        if any(not 1 <= s <= self.filter_size for s in (*self.strides, self.sgd_stride)):
            raise InputError(
                f"strides must lie in [1, filter_size = {self.filter_size}], got {list(self.strides)} "
                f"and sgd_stride {self.sgd_stride}"
            )
        for name in (
            "trials",
            "filter_size",
            "patches",
            "gd_steps",
            "gd_samples",
            "sgd_steps",
            "sgd_batch",
            "eval_every",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(not 0 < r < 1 for r in self.closeness):
            raise InputError(f"closeness values are patch correlations in (0, 1), got {list(self.closeness)}")
        if not 0 < self.sgd_switch < 1:
            raise InputError(f"sgd_switch is a fraction of the SGD steps in (0, 1), got {self.sgd_switch}")

    def overlap(self, stride: int) -> float:
        """The fraction of a patch shared with the next one."""
        return 1.0 - stride / self.filter_size


def sample_inputs(dist: str, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """i.i.d. unit-variance entries from ``dist`` (float32)."""
    if dist == "gaussian":
        return torch.randn(shape, generator=gen)
    u = torch.rand(shape, generator=gen)
    if dist == "uniform":
        return (u * 2 - 1) * math.sqrt(3.0)
    if dist == "laplace":  # inverse CDF; scale 1/sqrt(2) for unit variance
        centred = u - 0.5
        return -torch.sign(centred) * torch.log1p(-2 * centred.abs()) / math.sqrt(2.0)
    if dist == "rademacher":
        return torch.where(u < 0.5, -1.0, 1.0)
    raise InputError(f"unknown input distribution {dist!r}; choose from {', '.join(DISTRIBUTIONS)}")


def patches(x: Tensor, size: int, stride: int, count: int) -> Tensor:
    """``(..., d)`` signals -> ``(..., count, size)`` patches ``x[i*stride : i*stride + size]``."""
    return x.unfold(-1, size, stride)[..., :count, :]


def _unit(shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    v = torch.randn(shape, generator=gen)
    return v / v.norm(dim=-1, keepdim=True)


def _activations(z: Tensor, w: Tensor) -> Tensor:
    """Pre-activations ``w . Z_i``: ``(n, k, t)`` for patches shared by all trials ``(n, k, p)``, ``(t, n, k)``
    for one batch per trial ``(t, n, k, p)`` (contiguous layouts, as matrix products)."""
    t, p = w.shape
    if z.dim() == 3:
        n, k = z.shape[:2]
        return (z.reshape(n * k, p) @ w.T).view(n, k, t)
    n, k = z.shape[1:3]
    return torch.bmm(z.reshape(t, n * k, p), w[:, :, None]).view(t, n, k)


def teacher(z: Tensor, w_star: Tensor) -> Tensor:
    """``f(X, w*)`` of every trial: ``(n, t)`` for shared patches, ``(t, n)`` for per-trial batches."""
    pool_dim = 1 if z.dim() == 3 else 2
    return torch.relu(_activations(z, w_star)).mean(pool_dim)


def _grad(z: Tensor, y: Tensor, w: Tensor) -> Tensor:
    """The loss gradient of every trial, ``(t, p)``, for ``y = teacher(z, w*)`` (never a ``(t, n, k, p)`` temporary)."""
    t, p = w.shape
    a = _activations(z, w)
    if z.dim() == 3:
        n, k = z.shape[:2]
        coef = torch.where(a > 0, (torch.relu(a).mean(1) - y)[:, None, :], 0.0)  # (n, k, t)
        return coef.view(n * k, t).T @ z.reshape(n * k, p) / (n * k)
    n, k = z.shape[1:3]
    coef = (a > 0) * (torch.relu(a).mean(2) - y)[:, :, None]  # (t, n, k)
    return torch.bmm(coef.view(t, 1, n * k), z.reshape(t, n * k, p))[:, 0, :] / (n * k)


@dataclass
class Trajectories:
    """Relative distances ``|w - w*| / |w*|`` of every trial, recorded every ``eval_every`` steps.

    Attributes:
        steps: the recorded step numbers (0 = the initialization).
        distance: ``(trials, len(steps))`` array (float32 tensor).
    """

    steps: list[int]
    distance: Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def final(self) -> Tensor:
        return self.distance[:, -1]

    def steps_to(self, tol: float) -> Tensor:
        """Per trial, the step at which the distance first falls below ``tol``, interpolated log-linearly between the
        recorded steps (censored at the budget plus one evaluation interval when it never does)."""
        below = self.distance < tol
        steps = torch.tensor(self.steps, dtype=torch.float64)
        censored = float(steps[-1] + (steps[1] - steps[0] if len(steps) > 1 else 1))
        out = torch.full((self.distance.shape[0],), censored, dtype=torch.float64)
        log_d = self.distance.double().clamp_min(1e-30).log()
        for trial in torch.nonzero(below.any(1)).flatten().tolist():
            i = int(below[trial].float().argmax())
            if i == 0:
                out[trial] = 0.0
                continue
            d0, d1 = log_d[trial, i - 1], log_d[trial, i]
            frac = float((math.log(tol) - d0) / (d1 - d0)) if bool(torch.isfinite(d0)) and d1 != d0 else 1.0
            out[trial] = steps[i - 1] + min(max(frac, 0.0), 1.0) * (steps[i] - steps[i - 1])
        return out

    def to_json(self) -> dict[str, Any]:
        return {"steps": self.steps, "distance": self.distance.tolist(), **self.meta}


def make_patches(
    setup: ConvSetup, dist: str, shape: tuple[int, ...], stride: int, closeness: float, gen: torch.Generator
) -> Tensor:
    """``shape + (k, p)`` patches: from signals with ``stride`` (``closeness = 0``) or with a shared component."""
    p, k = setup.filter_size, setup.patches
    if closeness == 0:
        return patches(sample_inputs(dist, (*shape, (k - 1) * stride + p), gen), p, stride, k).contiguous()
    shared = sample_inputs(dist, (*shape, 1, p), gen)
    own = sample_inputs(dist, (*shape, k, p), gen)
    return math.sqrt(closeness) * shared + math.sqrt(1.0 - closeness) * own


def train_students(
    setup: ConvSetup, *, dist: str, stride: int, method: str, schedule: str = "constant", closeness: float = 0.0
) -> Trajectories:
    """Train ``setup.trials`` students at once; returns their distance-to-``w*`` trajectories.

    Args:
        dist, stride: the input distribution and stride of this condition.
        closeness: patch correlation rho (0: patches cut from i.i.d. signals with ``stride``).
        method: ``"gd"`` (full batch on ``gd_samples`` inputs shared by all trials) or ``"sgd"`` (a fresh
            batch of ``sgd_batch`` inputs per trial and step).
        schedule: SGD only: ``"small"``, ``"large"`` (one learning rate) or ``"two-stage"``.
    """
    p = setup.filter_size
    gen = torch.Generator().manual_seed(setup.seed)
    w_star = _unit((setup.trials, p), gen)  # the same draws for every condition (common random numbers)
    w = _unit((setup.trials, p), gen)
    data_gen = torch.Generator().manual_seed(
        setup.seed + 1 + 7919 * stride + 104729 * DISTRIBUTIONS.index(dist) + int(1000 * closeness)
    )
    if method == "gd":
        z = make_patches(setup, dist, (setup.gd_samples,), stride, closeness, data_gen)
        y = teacher(z, w_star)
        steps, rates = setup.gd_steps, [setup.gd_lr] * setup.gd_steps
    elif method == "sgd":
        steps = setup.sgd_steps
        switch = int(setup.sgd_switch * steps)
        lrs = {
            "small": [setup.sgd_lr_small] * steps,
            "large": [setup.sgd_lr_large] * steps,
            "two-stage": [setup.sgd_lr_large] * switch + [setup.sgd_lr_small] * (steps - switch),
        }
        if schedule not in lrs:
            raise InputError(f"schedule must be one of {', '.join(lrs)}, got {schedule!r}")
        rates = lrs[schedule]
    else:
        raise InputError(f"method must be 'gd' or 'sgd', got {method!r}")
    recorded, dists = [0], [(w - w_star).norm(dim=1)]
    for t in range(steps):
        if method == "sgd":
            z = make_patches(setup, dist, (setup.trials, setup.sgd_batch), stride, closeness, data_gen)
            y = teacher(z, w_star)
            if setup.sgd_noise:
                y = y + setup.sgd_noise * torch.randn(y.shape, generator=data_gen)
        w = w - rates[t] * _grad(z, y, w)
        if (t + 1) % setup.eval_every == 0 or t + 1 == steps:
            recorded.append(t + 1)
            dists.append((w - w_star).norm(dim=1))
    distance = torch.stack(dists, 1)
    distance = torch.where(torch.isfinite(distance), distance, torch.tensor(float("inf")))
    return Trajectories(
        recorded,
        distance,
        {
            "dist": dist,
            "stride": stride,
            "method": method,
            "schedule": schedule,
            "overlap": setup.overlap(stride),
            "closeness": closeness,
        },
    )


def load_setup(path: str | Path, scale: str) -> ConvSetup:
    """Read ``[conv]`` and the ``[scales.SCALE]`` overrides of ``rectlab/specs/conv-filter.toml``.

    Raises:
        ValueError: for unknown keys or a missing scale (the message lists the valid ones).
    """
    return load_setup_table(path, "conv", scale, ConvSetup)
