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

from ._jit import _channel_of, _sigmoid, _store_cast, _sum, build_of
from ._launch import MAX_CHUNK, PLANES_MIN_INNER, channel_backward, launch_flat, magic_divisor
from ._layout import channel_geometry, flat

__all__ = ["BUILD", "backward", "forward"]


@triton.jit(do_not_specialize=["inner_magic", "inner_shift", "c_magic", "c_shift"])
def _swish_fwd_kernel(x_ptr, y_ptr, n, b_ptr, C, inner_magic, inner_shift, c_magic, c_shift, BLOCK: tl.constexpr):
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
    HAS_DX: tl.constexpr, HAS_DP: tl.constexpr, TILE_R: tl.constexpr, TILE_W: tl.constexpr,
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
    if HAS_DP:
        tl.store(partial_ptr + pid_w * rows + r, _sum(contrib, 1), mask=row_ok)


@triton.jit
def _swish_bwd_rows_kernel(
    g_ptr, x_ptr, b_ptr, dx_ptr, partial_ptr, rows, width, inner, rows_per_program,
    HAS_DX: tl.constexpr, HAS_DP: tl.constexpr, TILE_R: tl.constexpr, TILE_W: tl.constexpr,
):  # fmt: skip
    # rows = samples of `width` = C * inner elements; channel = col // inner; partial[pid_r, col]
    pid_r = tl.program_id(0)
    pid_w = tl.program_id(1)
    cols = pid_w * TILE_W + tl.arange(0, TILE_W)
    col_ok = cols < width
    b = tl.load(b_ptr + cols // inner, mask=col_ok, other=0.0).to(tl.float32)
    acc = tl.full((TILE_R, TILE_W), 0.0, tl.float32)
    # a while loop over this program's row tiles, as in prelu._prelu_bwd_rows_kernel (Triton 3.6 interpreter)
    row = pid_r * rows_per_program
    end = tl.minimum(row + rows_per_program, rows)
    while row < end:
        r = row + tl.arange(0, TILE_R)
        in_bounds = (r < end)[:, None] & col_ok[None, :]
        offs = r[:, None] * width + cols[None, :]
        g = tl.load(g_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
        x = tl.load(x_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
        dx, contrib = _swish_grads(g, x, b[None, :])
        if HAS_DX:
            tl.store(dx_ptr + offs, _store_cast(dx, dx_ptr), mask=in_bounds)
        acc += contrib
        row += TILE_R
    if HAS_DP:
        tl.store(partial_ptr + pid_r * width + cols, _sum(acc, 0), mask=col_ok)


def forward(x: Tensor, beta: Tensor, dim: int = 1, block: int | None = None, max_chunk: int = MAX_CHUNK) -> Tensor:
    """Swish of a dense ``x``; ``beta`` has 1 value or ``x.shape[dim]`` values. Returns ``y`` like ``x``."""
    y = torch.empty_like(x)
    if x.numel() > 0:
        C, inner = channel_geometry(x, dim, beta.numel() > 1)
        launch_flat(
            _swish_fwd_kernel, x.numel(), (flat(x), flat(y)), (beta, C, *magic_divisor(inner), *magic_divisor(C)),
            period=C * inner, block=block, max_chunk=max_chunk,
        )  # fmt: skip
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
    return channel_backward(
        _swish_bwd_planes_kernel, _swish_bwd_rows_kernel, grad, x, beta, dim,
        need_dx=need_dx, need_dp=need_dbeta, planes_min_inner=planes_min_inner, max_chunk=max_chunk,
    )  # fmt: skip


BUILD = build_of(_swish_fwd_kernel)
"""What these kernels were built with (the family contract of :mod:`rectlab.kernels`)."""
