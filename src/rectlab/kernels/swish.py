"""Swish (Ramachandran et al. 2017): ``y = x * sigmoid(beta * x)``, ``beta`` one value or one per channel.

Same layout scheme as :mod:`rectlab.kernels.prelu`: a flat forward with the channel of memory offset
``o`` at ``(o // inner) % C``, and a one-pass backward that writes the input gradient and per-program
partial sums of the beta gradient (skipped when beta is fixed).

    s        = sigmoid(beta_c x)
    dL/dx    = g * (s + beta_c x s (1 - s))
    dL/dbeta_c = sum over channel c of g * x^2 s (1 - s)
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._common import (
    MAX_CHUNK,
    PLANES_MIN_INNER,
    TOKEN,
    _channel_of,
    _sigmoid,
    _store_cast,
    _sum,
    channel_geometry,
    chunks,
    flat,
    flat_config,
    interpreted,
    magic_divisor,
    reduce_partial,
    reduce_plan,
)

_COMMON_TOKEN = TOKEN  # the _common execution these kernels were built with (see rectlab.kernels.load)

__all__ = ["INTERPRET", "backward", "forward"]


@triton.jit(do_not_specialize=["inner_magic", "inner_shift", "c_magic", "c_shift"])
def _swish_fwd_kernel(x_ptr, b_ptr, y_ptr, n, C, inner_magic, inner_shift, c_magic, c_shift, BLOCK: tl.constexpr):
    # y = x * sigmoid(beta_c x),  c = (offset // inner) % C
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    in_bounds = offs < n
    x = tl.load(x_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    c = _channel_of(offs, inner_magic, inner_shift, C, c_magic, c_shift)
    b = tl.load(b_ptr + c, mask=in_bounds, other=0.0).to(tl.float32)
    tl.store(y_ptr + offs, _store_cast(x * _sigmoid(b * x), y_ptr), mask=in_bounds)


@triton.jit
def _swish_grads(g, x, b):
    # dy/dx = s + b x s (1 - s);  dy/db = x^2 s (1 - s);  s = sigmoid(b x)
    s = _sigmoid(b * x)
    ds = s * (1.0 - s)
    return g * (s + b * x * ds), g * x * x * ds


@triton.jit
def _swish_bwd_planes_kernel(
    g_ptr, x_ptr, b_ptr, dx_ptr, partial_ptr, rows, width, C,
    HAS_DX: tl.constexpr, HAS_DB: tl.constexpr, TILE_R: tl.constexpr, TILE_W: tl.constexpr,
):  # fmt: skip
    # rows = (sample, channel) planes of `width` elements; channel = row % C; partial[pid_w, row]
    pid_r = tl.program_id(0)
    pid_w = tl.program_id(1)
    r = pid_r * TILE_R + tl.arange(0, TILE_R)
    cols = pid_w * TILE_W + tl.arange(0, TILE_W)
    row_ok = r < rows
    in_bounds = row_ok[:, None] & (cols < width)[None, :]
    offs = r[:, None] * width + cols[None, :]
    b = tl.load(b_ptr + r % C, mask=row_ok, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    x = tl.load(x_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    dx, contrib = _swish_grads(g, x, b[:, None])
    if HAS_DX:
        tl.store(dx_ptr + offs, _store_cast(dx, dx_ptr), mask=in_bounds)
    if HAS_DB:
        tl.store(partial_ptr + pid_w * rows + r, _sum(contrib, 1), mask=row_ok)


@triton.jit
def _swish_bwd_rows_kernel(
    g_ptr, x_ptr, b_ptr, dx_ptr, partial_ptr, rows, width, inner, rows_per_program,
    HAS_DX: tl.constexpr, HAS_DB: tl.constexpr, TILE_R: tl.constexpr, TILE_W: tl.constexpr,
):  # fmt: skip
    # rows = samples of `width` = C * inner elements; channel = col // inner; partial[pid_r, col]
    pid_r = tl.program_id(0)
    pid_w = tl.program_id(1)
    cols = pid_w * TILE_W + tl.arange(0, TILE_W)
    col_ok = cols < width
    b = tl.load(b_ptr + cols // inner, mask=col_ok, other=0.0).to(tl.float32)
    acc = tl.full((TILE_R, TILE_W), 0.0, tl.float32)
    row0 = pid_r * rows_per_program
    for i in range(0, rows_per_program, TILE_R):
        r = row0 + i + tl.arange(0, TILE_R)
        in_bounds = (r < rows)[:, None] & col_ok[None, :]
        offs = r[:, None] * width + cols[None, :]
        g = tl.load(g_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
        x = tl.load(x_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
        dx, contrib = _swish_grads(g, x, b[None, :])
        if HAS_DX:
            tl.store(dx_ptr + offs, _store_cast(dx, dx_ptr), mask=in_bounds)
        acc += contrib
    if HAS_DB:
        tl.store(partial_ptr + pid_r * width + cols, _sum(acc, 0), mask=col_ok)


INTERPRET = interpreted(_swish_fwd_kernel)
"""Whether these kernels were built for the Triton interpreter (see :func:`rectlab.kernels.load`)."""


def forward(x: Tensor, beta: Tensor, dim: int = 1, block: int | None = None, max_chunk: int = MAX_CHUNK) -> Tensor:
    """Swish of a dense ``x``; ``beta`` has 1 value or ``x.shape[dim]`` values. Returns ``y`` like ``x``."""
    n = x.numel()
    y = torch.empty_like(x)
    if n == 0:
        return y
    C, inner = channel_geometry(x, dim, beta.numel() > 1)
    blk, warps = flat_config(n)
    blk = block or blk
    xf, yf = flat(x), flat(y)
    for start, length in chunks(n, C * inner, max_chunk):
        grid = (triton.cdiv(length, blk),)
        magic = (*magic_divisor(inner), *magic_divisor(C))
        _swish_fwd_kernel[grid](xf[start:], beta, yf[start:], length, C, *magic, BLOCK=blk, num_warps=warps)
    return y


def backward(
    grad: Tensor,
    x: Tensor,
    beta: Tensor,
    dim: int = 1,
    need_dx: bool = True,
    need_dbeta: bool = True,
    planes_min_inner: int = PLANES_MIN_INNER,
    max_chunk: int = MAX_CHUNK,
) -> tuple[Tensor | None, Tensor | None]:
    """Gradients of Swish in one pass over the data.

    Args:
        grad: gradient of the output, dense, in ``x``'s memory order.
        x: the forward's input.
        beta: 1 or ``C`` values.
        need_dx, need_dbeta: which gradients to produce.
        planes_min_inner, max_chunk: tiling knobs (tests use them to reach every code path).

    Returns:
        ``(dx, dbeta)``: ``dx`` like ``grad`` (or None), ``dbeta`` like ``beta`` (or None).
    """
    n = grad.numel()
    dx = torch.empty_like(grad) if need_dx else None
    db = torch.zeros(beta.numel(), dtype=torch.float32, device=grad.device) if need_dbeta else None
    if n == 0 or not (need_dx or need_dbeta):
        return dx, None if db is None else db.to(beta.dtype).reshape(beta.shape)
    C, inner = channel_geometry(grad, dim, beta.numel() > 1)
    gf, xf = flat(grad), flat(x)
    df = flat(dx) if dx is not None else gf
    for start, length in chunks(n, C * inner, max_chunk):
        plan = reduce_plan(length, C, inner, planes_min_inner)
        partial = torch.empty(plan.partial_shape if need_dbeta else (1,), dtype=torch.float32, device=grad.device)
        args = (gf[start:], xf[start:], beta, df[start:], partial, plan.rows, plan.width)
        flags = {"HAS_DX": need_dx, "HAS_DB": need_dbeta, "TILE_R": plan.tile_r, "TILE_W": plan.tile_w}
        if plan.kind == "planes":
            _swish_bwd_planes_kernel[plan.grid](*args, C, **flags, num_warps=plan.num_warps)
        else:
            _swish_bwd_rows_kernel[plan.grid](*args, inner, plan.rows_per_program, **flags, num_warps=plan.num_warps)
        if db is not None:
            db += reduce_partial(partial, plan, C, inner)
    return dx, None if db is None else db.to(beta.dtype).reshape(beta.shape)
