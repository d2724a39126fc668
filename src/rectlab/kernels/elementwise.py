"""Elementwise activations: one forward and one backward kernel, the activation a compile-time constant.

Each activation is a pair of ``@triton.jit`` functions, ``_<op>_fwd(x, p0, p1)`` and
``_<op>_bwd(x, g, p0, p1)`` (the input gradient ``g * dy/dx``), with its derivative written beside it.
``p0`` / ``p1`` carry the op's numbers (alpha, slope, beta, threshold ...). Math runs in float32 and
the result is stored in the tensor's dtype (fp32, bf16, fp16). The kernels walk a dense tensor's memory
on a flat 1-D grid, so the layout (NCHW, channels_last, transposed) does not matter.

The programs (`PROGRAMS`, the ``OP`` constexpr) are named like the ops of rectlab's op table
(`rectlab.activations.ops`), whose ``triton`` column says which programs each op launches (GELU two, RReLU
in evaluation leaky ReLU's). The piecewise-linear programs (`MASK_PROGRAMS`) can save a packed 1-bit mask
(8 elements a byte) instead of the input: their gradient only needs to know which side of the kink each
element was on.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from ._jit import _pack_bits, _sigmoid, _store_cast, _unpack_bit, build_of
from ._launch import MAX_CHUNK, Packed, empty_outputs, launch_flat
from ._layout import flat

__all__ = ["BUILD", "MASK_PROGRAMS", "PROGRAMS", "backward", "forward"]

PROGRAMS = (
    "relu",
    "leaky-relu",
    "elu",
    "celu",
    "selu",
    "gelu",
    "gelu-tanh",
    "silu",
    "mish",
    "softplus",
    "smelu",
    "helu",
    "gcu",
)
"""The programs of this family, one branch each in `_act_fwd` / `_act_bwd`."""

MASK_PROGRAMS = ("relu", "leaky-relu", "helu")
"""The programs whose backward can run from a packed 1-bit mask instead of the input (`_mask_bit`)."""

GELU_TANH_K0 = tl.constexpr(0.7978845608028654)  # sqrt(2 / pi)
GELU_TANH_K1 = tl.constexpr(0.044715)
INV_SQRT2 = tl.constexpr(0.7071067811865476)
INV_SQRT_2PI = tl.constexpr(0.3989422804014327)


# ----------------------------------------------------------------------------------------------------
# The math, one pair per op (the negative branch exponentiates min(x, 0): the unused side never overflows)
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _relu_fwd(x, p0, p1):
    # y = max(0, x); NaN stays NaN as in torch.relu
    return tl.where(x < 0.0, 0.0, x)


@triton.jit
def _relu_bwd(x, g, p0, p1):
    # dy/dx = 1 for x > 0, else 0 (0 at the kink, as PyTorch)
    return tl.where(x > 0.0, g, 0.0)


@triton.jit
def _leaky_relu_fwd(x, p0, p1):
    # y = x for x > 0, else slope * x          (p0 = slope)
    return tl.where(x > 0.0, x, p0 * x)


@triton.jit
def _leaky_relu_bwd(x, g, p0, p1):
    # dy/dx = 1 for x > 0, else slope (slope at the kink, as PyTorch)
    return tl.where(x > 0.0, g, p0 * g)


@triton.jit
def _elu_fwd(x, p0, p1):
    # y = x for x > 0, else alpha * (exp(x) - 1)          (p0 = alpha)
    return tl.where(x > 0.0, x, p0 * (tl.exp(tl.where(x > 0.0, 0.0, x)) - 1.0))


@triton.jit
def _elu_bwd(x, g, p0, p1):
    # dy/dx = 1 for x > 0, else alpha * exp(x) (alpha at 0, as PyTorch)
    return tl.where(x > 0.0, g, g * p0 * tl.exp(tl.where(x > 0.0, 0.0, x)))


@triton.jit
def _celu_fwd(x, p0, p1):
    # y = x for x > 0, else alpha * (exp(x / alpha) - 1)   (p0 = alpha > 0)
    return tl.where(x > 0.0, x, p0 * (tl.exp(tl.where(x > 0.0, 0.0, x) / p0) - 1.0))


@triton.jit
def _celu_bwd(x, g, p0, p1):
    # dy/dx = 1 for x > 0, else exp(x / alpha)
    return tl.where(x > 0.0, g, g * tl.exp(tl.where(x > 0.0, 0.0, x) / p0))


@triton.jit
def _selu_fwd(x, p0, p1):
    # y = scale * (x for x > 0, else alpha * (exp(x) - 1))   (p0 = alpha, p1 = scale)
    return p1 * tl.where(x > 0.0, x, p0 * (tl.exp(tl.where(x > 0.0, 0.0, x)) - 1.0))


@triton.jit
def _selu_bwd(x, g, p0, p1):
    # dy/dx = scale for x > 0, else scale * alpha * exp(x)
    return p1 * tl.where(x > 0.0, g, g * p0 * tl.exp(tl.where(x > 0.0, 0.0, x)))


@triton.jit
def _gelu_fwd(x, p0, p1):
    # y = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
    return 0.5 * x * (1.0 + tl.math.erf(x * INV_SQRT2))


@triton.jit
def _gelu_bwd(x, g, p0, p1):
    # dy/dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    cdf = 0.5 * (1.0 + tl.math.erf(x * INV_SQRT2))
    pdf = tl.exp(-0.5 * x * x) * INV_SQRT_2PI
    return g * (cdf + x * pdf)


@triton.jit
def _tanh(u):
    # tanh(u) = 2 sigmoid(2u) - 1 (Triton has no portable tanh builtin); saturates to +-1 without NaN
    return 2.0 * _sigmoid(2.0 * u) - 1.0


@triton.jit
def _gelu_tanh_fwd(x, p0, p1):
    # y = x/2 * (1 + tanh(u)),  u = k0 * (x + k1 x^3)
    u = GELU_TANH_K0 * (x + GELU_TANH_K1 * x * x * x)
    return 0.5 * x * (1.0 + _tanh(u))


@triton.jit
def _gelu_tanh_bwd(x, g, p0, p1):
    # dy/dx = (1 + t)/2 + x/2 * (1 - t^2) * k0 * (1 + 3 k1 x^2),  t = tanh(u)
    u = GELU_TANH_K0 * (x + GELU_TANH_K1 * x * x * x)
    t = _tanh(u)
    return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_TANH_K0 * (1.0 + 3.0 * GELU_TANH_K1 * x * x))


@triton.jit
def _silu_fwd(x, p0, p1):
    # y = x * s,  s = sigmoid(x)
    return x * _sigmoid(x)


@triton.jit
def _silu_bwd(x, g, p0, p1):
    # dy/dx = s + x s (1 - s) = s (1 + x (1 - s))
    s = _sigmoid(x)
    return g * s * (1.0 + x * (1.0 - s))


@triton.jit
def _mish_tanh_softplus(x):
    # t = tanh(softplus(x)) = n (n + 2) / (n (n + 2) + 2) with n = exp(x): no cancellation for x << 0,
    # and 1 - t = 2 / (n (n + 2) + 2) exactly. x is clamped at 20 where t is 1 in float32.
    n = tl.exp(tl.minimum(x, 20.0))
    num = n * (n + 2.0)
    den = num + 2.0
    return num / den, 2.0 / den, n


@triton.jit
def _mish_fwd(x, p0, p1):
    # y = x * tanh(softplus(x))
    t, _, _ = _mish_tanh_softplus(x)
    return x * t


@triton.jit
def _mish_bwd(x, g, p0, p1):
    # dy/dx = t + x (1 - t^2) sigmoid(x),  t = tanh(softplus(x)), d softplus/dx = sigmoid(x)
    t, one_minus_t, n = _mish_tanh_softplus(x)
    sig = n / (1.0 + n)  # sigmoid(x) for x <= 20; beyond, 1 - t^2 is 0 anyway
    return g * (t + x * one_minus_t * (1.0 + t) * sig)


@triton.jit
def _softplus_fwd(x, p0, p1):
    # y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold   (p0 = beta, p1 = threshold)
    bx = p0 * x
    return tl.where(bx > p1, x, tl.log(1.0 + tl.exp(bx)) / p0)


@triton.jit
def _softplus_bwd(x, g, p0, p1):
    # dy/dx = sigmoid(beta x), and 1 where beta x > threshold
    bx = p0 * x
    return tl.where(bx > p1, g, g * _sigmoid(bx))


@triton.jit
def _smelu_fwd(x, p0, p1):
    # y = 0 for x <= -beta; (x + beta)^2 / (4 beta) for |x| < beta; x for x >= beta   (p0 = beta > 0)
    quad = (x + p0) * (x + p0) / (4.0 * p0)
    return tl.where(x >= p0, x, tl.where(x <= -p0, 0.0, quad))


@triton.jit
def _smelu_bwd(x, g, p0, p1):
    # dy/dx = 0 for x <= -beta; (x + beta) / (2 beta) between; 1 for x >= beta (continuous)
    return tl.where(x >= p0, g, tl.where(x <= -p0, 0.0, g * (x + p0) / (2.0 * p0)))


@triton.jit
def _helu_fwd(x, p0, p1):
    # y = max(0, x): HeLU's forward is ReLU   (p0 = alpha >= 0)
    return tl.where(x < 0.0, 0.0, x)


@triton.jit
def _helu_bwd(x, g, p0, p1):
    # "dy/dx" = 1 for x > -alpha, else 0: the hysteresis moves the backward threshold left by alpha
    return tl.where(x > -p0, g, 0.0)


@triton.jit
def _gcu_fwd(x, p0, p1):
    # y = x cos x
    return x * tl.cos(x)


@triton.jit
def _gcu_bwd(x, g, p0, p1):
    # dy/dx = cos x - x sin x
    return g * (tl.cos(x) - x * tl.sin(x))


@triton.jit
def _mask_bit(x, p0, OP: tl.constexpr):
    # The side of the kink each element is on; the backward of a MASK_PROGRAMS program needs nothing else.
    if OP == "helu":
        bit = x > -p0
    else:  # relu, leaky-relu
        bit = x > 0.0
    return bit


@triton.jit
def _bwd_from_bit(bit, g, p0, OP: tl.constexpr):
    if OP == "leaky-relu":
        dx = tl.where(bit, g, p0 * g)
    else:  # relu, helu
        dx = tl.where(bit, g, 0.0)
    return dx


@triton.jit
def _act_fwd(x, p0, p1, OP: tl.constexpr):
    if OP == "relu":
        y = _relu_fwd(x, p0, p1)
    elif OP == "leaky-relu":
        y = _leaky_relu_fwd(x, p0, p1)
    elif OP == "elu":
        y = _elu_fwd(x, p0, p1)
    elif OP == "celu":
        y = _celu_fwd(x, p0, p1)
    elif OP == "selu":
        y = _selu_fwd(x, p0, p1)
    elif OP == "gelu":
        y = _gelu_fwd(x, p0, p1)
    elif OP == "gelu-tanh":
        y = _gelu_tanh_fwd(x, p0, p1)
    elif OP == "silu":
        y = _silu_fwd(x, p0, p1)
    elif OP == "mish":
        y = _mish_fwd(x, p0, p1)
    elif OP == "softplus":
        y = _softplus_fwd(x, p0, p1)
    elif OP == "smelu":
        y = _smelu_fwd(x, p0, p1)
    elif OP == "helu":
        y = _helu_fwd(x, p0, p1)
    else:
        tl.static_assert(OP == "gcu", "unknown elementwise op")
        y = _gcu_fwd(x, p0, p1)
    return y


@triton.jit
def _act_bwd(x, g, p0, p1, OP: tl.constexpr):
    if OP == "relu":
        dx = _relu_bwd(x, g, p0, p1)
    elif OP == "leaky-relu":
        dx = _leaky_relu_bwd(x, g, p0, p1)
    elif OP == "elu":
        dx = _elu_bwd(x, g, p0, p1)
    elif OP == "celu":
        dx = _celu_bwd(x, g, p0, p1)
    elif OP == "selu":
        dx = _selu_bwd(x, g, p0, p1)
    elif OP == "gelu":
        dx = _gelu_bwd(x, g, p0, p1)
    elif OP == "gelu-tanh":
        dx = _gelu_tanh_bwd(x, g, p0, p1)
    elif OP == "silu":
        dx = _silu_bwd(x, g, p0, p1)
    elif OP == "mish":
        dx = _mish_bwd(x, g, p0, p1)
    elif OP == "softplus":
        dx = _softplus_bwd(x, g, p0, p1)
    elif OP == "smelu":
        dx = _smelu_bwd(x, g, p0, p1)
    elif OP == "helu":
        dx = _helu_bwd(x, g, p0, p1)
    else:
        tl.static_assert(OP == "gcu", "unknown elementwise op")
        dx = _gcu_bwd(x, g, p0, p1)
    return dx


# ----------------------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _elementwise_fwd_kernel(
    x_ptr, y_ptr, mask_ptr, n, p0, p1, OP: tl.constexpr, SAVE_MASK: tl.constexpr, BLOCK: tl.constexpr
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    in_bounds = offs < n
    x = tl.load(x_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    y = _act_fwd(x, p0, p1, OP)
    tl.store(y_ptr + offs, _store_cast(y, y_ptr), mask=in_bounds)
    if SAVE_MASK:
        byte_offs = pid * (BLOCK // 8) + tl.arange(0, BLOCK // 8)
        bits = _pack_bits(_mask_bit(x, p0, OP) & in_bounds, BLOCK)
        tl.store(mask_ptr + byte_offs, bits, mask=byte_offs < (n + 7) // 8)


@triton.jit
def _elementwise_bwd_kernel(
    g_ptr, saved_ptr, dx_ptr, n, p0, p1, OP: tl.constexpr, FROM_MASK: tl.constexpr, BLOCK: tl.constexpr
):
    # dx = g * dy/dx, reading the input x (or, for MASK_PROGRAMS, the packed mask) saved by the forward
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    in_bounds = offs < n
    g = tl.load(g_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    if FROM_MASK:
        dx = _bwd_from_bit(_unpack_bit(saved_ptr, offs, in_bounds), g, p0, OP)
    else:
        x = tl.load(saved_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
        dx = _act_bwd(x, g, p0, p1, OP)
    tl.store(dx_ptr + offs, _store_cast(dx, dx_ptr), mask=in_bounds)


# ----------------------------------------------------------------------------------------------------
# Host side
# ----------------------------------------------------------------------------------------------------


def _check_op(op: str, save_mask: bool) -> None:
    if op not in PROGRAMS:
        raise ValueError(f"unknown elementwise program {op!r}; known: {', '.join(PROGRAMS)}")
    if save_mask and op not in MASK_PROGRAMS:
        raise ValueError(f"save_mask=True needs a piecewise-linear program ({', '.join(MASK_PROGRAMS)}), not {op!r}")


def forward(
    x: Tensor,
    op: str,
    p0: float = 0.0,
    p1: float = 0.0,
    save_mask: bool = False,
    block: int | None = None,
    max_chunk: int = MAX_CHUNK,
) -> tuple[Tensor, Tensor]:
    """Apply ``op`` to a dense tensor ``x``.

    Args:
        x: dense (see `rectlab.kernels._layout.is_dense`) fp32 / bf16 / fp16 tensor.
        op: one of `PROGRAMS`; ``p0`` / ``p1`` its numbers (see each ``_<op>_fwd``).
        save_mask: also return the packed mask for the backward (``op`` in `MASK_PROGRAMS`).
        block, max_chunk: elements a program and a launch (tests use small ones to cover many programs
            and launches).

    Returns:
        ``(y, mask)``: ``y`` in ``x``'s dtype and memory layout; ``mask`` holds ``ceil(numel / 8)`` bytes
        in ``x``'s memory order when ``save_mask``, else it is empty.
    """
    _check_op(op, save_mask)
    y, mask = empty_outputs(x, save_mask)
    if x.numel() > 0:
        launch_flat(
            _elementwise_fwd_kernel,
            x.numel(),
            (flat(x), flat(y), Packed(mask)),
            (float(p0), float(p1)),
            block=block,
            max_chunk=max_chunk,
            OP=op,
            SAVE_MASK=save_mask,
        )
    return y, mask


def backward(
    grad: Tensor,
    saved: Tensor,
    op: str,
    p0: float = 0.0,
    p1: float = 0.0,
    from_mask: bool = False,
    block: int | None = None,
    max_chunk: int = MAX_CHUNK,
) -> Tensor:
    """Input gradient of ``op``.

    Args:
        grad: gradient of the output, dense and in the memory order of the forward's input.
        saved: the forward's input ``x`` (same layout as ``grad``), or its packed mask when ``from_mask``.
        op, p0, p1: as in `forward`.

    Returns:
        ``dx`` in ``grad``'s dtype and layout.
    """
    _check_op(op, from_mask)
    dx = empty_outputs(grad, False)[0]
    if grad.numel() > 0:
        s = Packed(saved) if from_mask else flat(saved)
        launch_flat(
            _elementwise_bwd_kernel,
            grad.numel(),
            (flat(grad), s, flat(dx)),
            (float(p0), float(p1)),
            block=block,
            max_chunk=max_chunk,
            OP=op,
            FROM_MASK=from_mask,
        )
    return dx


BUILD = build_of(_elementwise_fwd_kernel)
"""What these kernels were built with (the family contract of `rectlab.kernels`)."""
