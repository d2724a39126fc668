"""Reference implementations of every activation in plain torch.

These functions are the *specification*: each fast path (Triton kernel, fused autograd
function) is tested against them, forward and backward. They favour clarity over speed.

Papers:
    He et al. 2015, "Delving Deep into Rectifiers" (arXiv 1502.01852): PReLU, LReLU gains.
    Xu et al. 2015, "Empirical Evaluation of Rectified Activations" (arXiv 1505.00853): RReLU.
    Clevert et al. 2015, "Fast and Accurate Deep Network Learning by ELUs" (arXiv 1511.07289).
    Klambauer et al. 2017, "Self-Normalizing Neural Networks" (arXiv 1706.02515): SELU.
    Barron 2017, "Continuously Differentiable Exponential Linear Units" (arXiv 1704.07483): CELU.
    Hendrycks & Gimpel 2016, "Gaussian Error Linear Units" (arXiv 1606.08415).
    Ramachandran et al. 2017, "Searching for Activation Functions" (arXiv 1710.05941): Swish.
    Misra 2019, "Mish" (arXiv 1908.08681).
    Shamir et al. 2020, "Smooth activations and reproducibility in deep networks" (arXiv 2010.09931).
    Kimhi et al. 2024, "Hysteresis Activation Function for Efficient Inference" (arXiv 2411.10573): HeLU.
    Noel et al. 2021, "Growing Cosine Unit" (arXiv 2108.12943): GCU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError

__all__ = [
    "relu",
    "leaky_relu",
    "rrelu",
    "prelu",
    "elu",
    "celu",
    "selu",
    "gelu",
    "swish",
    "silu",
    "mish",
    "softplus",
    "smelu",
    "helu",
    "gcu",
    "identity",
    "broadcast_param",
    "SELU_ALPHA",
    "SELU_SCALE",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def broadcast_param(param: Tensor, x: Tensor, dim: int = 1, what: str = "parameter") -> Tensor:
    """Reshape a 1-element or per-channel parameter so it broadcasts against ``x`` along ``dim``.

    Args:
        param: tensor with 1 element (shared) or ``x.shape[dim]`` elements (per channel).
        x: the input.
        dim: the channel dimension of ``x`` (negative values count from the end).
        what: name used in error messages.

    Returns:
        ``param`` viewed with shape broadcastable to ``x``.
    """
    if param.numel() == 1:
        return param.reshape(())
    if x.dim() == 0:
        raise InputError(f"{what} has {param.numel()} values but the input is a scalar; use a single value")
    d = dim if dim >= 0 else x.dim() + dim
    if not 0 <= d < x.dim():
        raise InputError(f"{what}: dim={dim} is out of range for an input with {x.dim()} dimensions")
    channels = x.shape[d]
    if param.numel() != channels:
        raise InputError(
            f"{what} has {param.numel()} values but the input has {channels} channels along dim {dim} "
            f"(shape {tuple(x.shape)}); create it with num_parameters={channels} or 1 (shared), "
            f"or pass dim= to select the channel dimension"
        )
    shape = [1] * x.dim()
    shape[d] = channels
    return param.reshape(shape)


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """ReLU: ``max(0, x)`` (Nair & Hinton 2010). Gradient at ``x == 0`` is 0."""
    return torch.relu_(x) if inplace else torch.relu(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """Leaky ReLU: ``x`` for ``x > 0``, ``negative_slope * x`` otherwise (Maas et al. 2013)."""
    return F.leaky_relu(x, negative_slope, inplace=inplace)


def rrelu(
    x: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Randomized leaky ReLU (Xu et al. 2015).

    In training each negative element gets its own slope ``a ~ U(lower, upper)``; in evaluation the
    slope is the mean ``(lower + upper) / 2``. Returns ``x`` for ``x >= 0`` and ``a * x`` otherwise.
    """
    if not training:
        return F.leaky_relu(x, (lower + upper) / 2)
    slopes = torch.empty_like(x, dtype=torch.float32).uniform_(lower, upper, generator=generator)
    return torch.where(x >= 0, x, x * slopes.to(x.dtype))


def prelu(x: Tensor, weight: Tensor, dim: int = 1) -> Tensor:
    """Parametric ReLU (He et al. 2015, eq. 1): ``x`` for ``x > 0``, ``a * x`` otherwise.

    Args:
        x: input of any shape.
        weight: 1 value (channel-shared) or one per channel along ``dim`` (channel-wise).
        dim: channel dimension (1 for NCHW / (N, C); -1 for (N, L, C)).
    """
    a = broadcast_param(weight, x, dim, "PReLU weight")
    return torch.where(x > 0, x, a * x)


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """ELU (Clevert et al. 2015): ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""
    return F.elu(x, alpha, inplace=inplace)


def celu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """CELU (Barron 2017): ``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    return F.celu(x, alpha, inplace=inplace)


def selu(x: Tensor, inplace: bool = False) -> Tensor:
    """SELU (Klambauer et al. 2017): ``scale * elu(x, alpha)`` with the self-normalizing constants."""
    return F.selu(x, inplace=inplace)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU (Hendrycks & Gimpel 2016): ``x * Phi(x)``; ``approximate="tanh"`` uses the tanh form."""
    if approximate not in ("none", "tanh"):
        raise InputError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return F.gelu(x, approximate=approximate)


def swish(x: Tensor, beta: Tensor | float = 1.0, dim: int = 1) -> Tensor:
    """Swish (Ramachandran et al. 2017): ``x * sigmoid(beta * x)``.

    Args:
        beta: a number, a 1-element tensor, or one value per channel along ``dim``.
    """
    if not isinstance(beta, Tensor):
        return x * torch.sigmoid(beta * x)
    b = broadcast_param(beta, x, dim, "Swish beta")
    return x * torch.sigmoid(b * x)


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    """SiLU: ``x * sigmoid(x)`` (Swish with beta = 1; Elfwing et al. 2017)."""
    return F.silu(x, inplace=inplace)


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    """Mish (Misra 2019): ``x * tanh(softplus(x))``."""
    return F.mish(x, inplace=inplace)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """Softplus: ``log(1 + exp(beta * x)) / beta``, linear above ``threshold`` for stability."""
    return F.softplus(x, beta, threshold)


def smelu(x: Tensor, beta: float = 1.0) -> Tensor:
    """Smooth ReLU (Shamir et al. 2020, eq. 5).

    ``0`` for ``x <= -beta``; ``(x + beta)^2 / (4 beta)`` for ``|x| <= beta``; ``x`` for ``x >= beta``.
    Its gradient is ``clamp((x + beta) / (2 beta), 0, 1)``: continuous, unlike ReLU's.
    """
    if beta <= 0:
        raise InputError(f"SmeLU beta must be > 0 (the half-width of the quadratic region), got {beta}")
    quad = (x + beta) ** 2 / (4 * beta)
    return torch.where(x >= beta, x, torch.where(x <= -beta, torch.zeros_like(x), quad))


def helu(x: Tensor, alpha: float = 0.05) -> Tensor:
    """Hysteresis ReLU (HeLU; Kimhi et al. 2024).

    Forward is ReLU. Backward lets the gradient through where ``x > -alpha`` (a shifted threshold),
    so units slightly below zero still learn, which reduces dead neurons at no inference cost.
    Written with a straight-through construction so the value is exactly ``relu(x)`` and the
    gradient is exactly ``grad * (x > -alpha)``.
    """
    if alpha < 0:
        raise InputError(f"HeLU alpha must be >= 0 (the backward threshold is -alpha), got {alpha}")
    mask = (x > -alpha).to(x.dtype)
    return torch.relu(x).detach() + (x - x.detach()) * mask


def gcu(x: Tensor) -> Tensor:
    """Growing Cosine Unit (Noel et al. 2021): ``x * cos(x)``; a single GCU neuron can solve XOR."""
    return x * torch.cos(x)


def identity(x: Tensor) -> Tensor:
    """Identity; what EraseReLU puts in place of an erased ReLU (Dong et al. 2017)."""
    return x


# Constants used by gains and tests.
GELU_TANH_C = math.sqrt(2.0 / math.pi)
