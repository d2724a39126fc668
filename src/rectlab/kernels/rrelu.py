"""RReLU in training mode (Xu et al. 2015): ``y = x`` for ``x >= 0``, ``a * x`` otherwise, ``a ~ U(lower, upper)``.

The slopes are not stored: element ``e`` draws its slope from a counter-based generator (Philox-4x32-10,
the generator behind ``tl.rand``) keyed by a 64-bit seed, and the backward regenerates the same slopes
from the same seed. One Philox call yields four 32-bit numbers, used by four neighbouring elements.

    dL/dx = g for x >= 0, a_e * g otherwise

(Evaluation mode is leaky ReLU with the mean slope: `rectlab.kernels.elementwise`.)
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from ._jit import _pack_bits, _store_cast, _unpack_bit, build_of
from ._launch import MAX_CHUNK, Packed, empty_outputs, launch_flat
from ._layout import flat

__all__ = ["BUILD", "PROGRAMS", "backward", "forward", "philox_reference"]

PROGRAMS = ("rrelu",)
"""The one program of this family (named like the op of `rectlab.activations.ops`)."""

PHILOX_KEY_A = tl.constexpr(0x9E3779B9)
PHILOX_KEY_B = tl.constexpr(0xBB67AE85)
PHILOX_ROUND_A = tl.constexpr(0xD2511F53)
PHILOX_ROUND_B = tl.constexpr(0xCD9E8D57)
PHILOX_ROUNDS = tl.constexpr(10)


@triton.jit
def _philox(seed, counter):
    # Philox-4x32-10 (Salmon et al. 2011) on the counter (lo, hi, 0, 0) with the key (seed lo, seed hi),
    # as triton.language.random.philox_impl; written here so that it runs under the interpreter whatever
    # was imported first (see rectlab.kernels).
    c0 = (counter & 0xFFFFFFFF).to(tl.uint32)
    c1 = (counter >> 32).to(tl.uint32)
    c2 = c0 * 0
    c3 = c0 * 0
    k0 = (seed & 0xFFFFFFFF).to(tl.uint32)
    k1 = ((seed >> 32) & 0xFFFFFFFF).to(tl.uint32)
    for _ in tl.static_range(PHILOX_ROUNDS):
        _c0, _c2 = c0, c2
        c0 = tl.umulhi(PHILOX_ROUND_B, _c2) ^ c1 ^ k0
        c2 = tl.umulhi(PHILOX_ROUND_A, _c0) ^ c3 ^ k1
        c1 = _c2 * PHILOX_ROUND_B
        c3 = _c0 * PHILOX_ROUND_A
        k0 = k0 + PHILOX_KEY_A
        k1 = k1 + PHILOX_KEY_B
    return c0, c1, c2, c3


@triton.jit
def _slopes(seed_ptr, counter0, lower, upper, BLOCK: tl.constexpr):
    # a_e = lower + (upper - lower) * u_e, u_e in [0, 1) from 24 random bits; element e = 4k + j takes
    # output j of Philox counter k, so a slope depends only on (seed, e), not on blocks or launches.
    pid = tl.program_id(0)
    seed = tl.load(seed_ptr)
    k = counter0 + (pid * (BLOCK // 4) + tl.arange(0, BLOCK // 4)).to(tl.int64)
    r0, r1, r2, r3 = _philox(seed, k)
    r = tl.reshape(tl.join(tl.join(r0, r2), tl.join(r1, r3)), (BLOCK,))
    u = (r >> 8).to(tl.float32) * 5.960464477539063e-08  # 2**-24
    return lower + (upper - lower) * u


@triton.jit
def _rrelu_fwd_kernel(
    x_ptr, y_ptr, mask_ptr, n, seed_ptr, counter0, lower, upper, SAVE_MASK: tl.constexpr, BLOCK: tl.constexpr
):
    # y = x for x >= 0, else a_e x
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    in_bounds = offs < n
    x = tl.load(x_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    a = _slopes(seed_ptr, counter0, lower, upper, BLOCK)
    tl.store(y_ptr + offs, _store_cast(tl.where(x >= 0.0, x, a * x), y_ptr), mask=in_bounds)
    if SAVE_MASK:
        byte_offs = pid * (BLOCK // 8) + tl.arange(0, BLOCK // 8)
        tl.store(mask_ptr + byte_offs, _pack_bits((x >= 0.0) & in_bounds, BLOCK), mask=byte_offs < (n + 7) // 8)


@triton.jit
def _rrelu_bwd_kernel(
    g_ptr, saved_ptr, dx_ptr, n, seed_ptr, counter0, lower, upper, FROM_MASK: tl.constexpr, BLOCK: tl.constexpr
):
    # dx = g for x >= 0, else a_e g, the slopes regenerated from the seed
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    in_bounds = offs < n
    g = tl.load(g_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    if FROM_MASK:
        pos = _unpack_bit(saved_ptr, offs, in_bounds)
    else:
        pos = tl.load(saved_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32) >= 0.0
    a = _slopes(seed_ptr, counter0, lower, upper, BLOCK)
    tl.store(dx_ptr + offs, _store_cast(tl.where(pos, g, a * g), dx_ptr), mask=in_bounds)


def forward(
    x: Tensor,
    seed: Tensor,
    lower: float,
    upper: float,
    save_mask: bool = False,
    block: int | None = None,
    max_chunk: int = MAX_CHUNK,
) -> tuple[Tensor, Tensor]:
    """RReLU (training) of a dense ``x`` with slopes drawn from ``seed`` (an int64 tensor of 1 element).

    Returns:
        ``(y, mask)``: ``y`` like ``x``; ``mask`` the packed ``x >= 0`` bits when ``save_mask``, else empty.
    """
    y, mask = empty_outputs(x, save_mask)
    if x.numel() > 0:
        launch_flat(
            _rrelu_fwd_kernel,
            x.numel(),
            (flat(x), flat(y), Packed(mask)),
            lambda start: (seed, start // 4, float(lower), float(upper)),
            block=block,
            max_chunk=max_chunk,
            SAVE_MASK=save_mask,
        )
    return y, mask


def backward(
    grad: Tensor,
    saved: Tensor,
    seed: Tensor,
    lower: float,
    upper: float,
    from_mask: bool = False,
    block: int | None = None,
    max_chunk: int = MAX_CHUNK,
) -> Tensor:
    """Input gradient of RReLU (training): ``saved`` is the input ``x`` or, when ``from_mask``, its mask."""
    dx = empty_outputs(grad, False)[0]
    if grad.numel() > 0:
        s = Packed(saved) if from_mask else flat(saved)
        launch_flat(
            _rrelu_bwd_kernel,
            grad.numel(),
            (flat(grad), s, flat(dx)),
            lambda start: (seed, start // 4, float(lower), float(upper)),
            block=block,
            max_chunk=max_chunk,
            FROM_MASK=from_mask,
        )
    return dx


def philox_reference(seed: int, counter: int, rounds: int = 10) -> tuple[int, int, int, int]:
    """Philox-4x32 in plain Python, for tests: the four 32-bit outputs for one 64-bit counter."""
    m32 = 0xFFFFFFFF
    c = [counter & m32, (counter >> 32) & m32, 0, 0]
    k0, k1 = seed & m32, (seed >> 32) & m32
    for _ in range(rounds):
        c0, c2 = c[0], c[2]
        hi_b, lo_b = divmod(0xCD9E8D57 * c2, 1 << 32)
        hi_a, lo_a = divmod(0xD2511F53 * c0, 1 << 32)
        c = [hi_b ^ c[1] ^ k0, lo_b, hi_a ^ c[3] ^ k1, lo_a]
        k0, k1 = (k0 + 0x9E3779B9) & m32, (k1 + 0xBB67AE85) & m32
    return c[0], c[1], c[2], c[3]


BUILD = build_of(_rrelu_fwd_kernel)
"""What these kernels were built with (the family contract of `rectlab.kernels`)."""
