"""PReLU (He et al. 2015): ``y = x`` for ``x > 0``, ``a_c * x`` otherwise, ``a`` shared or one per channel.

Forward: a flat 1-D grid over the dense tensor's memory; the channel of memory offset ``o`` is
``(o // inner) % C`` (``inner`` = the channel dim's stride: ``H*W`` for NCHW, 1 for channels_last,
``(N, C)`` and ``(N, L, C)``), so no layout is copied.

Backward: one pass that writes the input gradient and, per program, partial sums of the weight
gradient into a small float32 buffer, reduced afterwards (see :class:`~rectlab.kernels._launch.ReducePlan`).

    dL/dx   = g          for x > 0,  a_c * g otherwise
    dL/da_c = sum over the elements of channel c with x <= 0 of g * x
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from ._jit import _channel_of, _pack_bits, _store_cast, _sum, _unpack_bit, build_of
from ._launch import (
    MAX_CHUNK,
    PLANES_MIN_INNER,
    Packed,
    channel_backward,
    empty_outputs,
    launch_flat,
    magic_divisor,
)
from ._layout import channel_geometry, flat

__all__ = ["BUILD", "backward", "forward"]


@triton.jit(do_not_specialize=["inner_magic", "inner_shift", "c_magic", "c_shift"])
def _prelu_fwd_kernel(
    x_ptr, y_ptr, mask_ptr, n, w_ptr, C, inner_magic, inner_shift, c_magic, c_shift,
    SAVE_MASK: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    # y = x for x > 0, else a_c * x,  c = (offset // inner) % C
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    in_bounds = offs < n
    x = tl.load(x_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    c = _channel_of(offs, inner_magic, inner_shift, C, c_magic, c_shift)
    a = tl.load(w_ptr + c, mask=in_bounds, other=0.0).to(tl.float32)
    y = tl.where(x > 0.0, x, a * x)
    tl.store(y_ptr + offs, _store_cast(y, y_ptr), mask=in_bounds)
    if SAVE_MASK:
        byte_offs = pid * (BLOCK // 8) + tl.arange(0, BLOCK // 8)
        tl.store(mask_ptr + byte_offs, _pack_bits((x > 0.0) & in_bounds, BLOCK), mask=byte_offs < (n + 7) // 8)


@triton.jit
def _prelu_grads(g, saved_ptr, offs, in_bounds, a, FROM_MASK: tl.constexpr):
    # dx = g for x > 0 else a * g;  contribution to dL/da = g * x where x <= 0 (0 at x == 0 either way)
    if FROM_MASK:
        pos = _unpack_bit(saved_ptr, offs, in_bounds)
        contrib = g * 0.0
    else:
        x = tl.load(saved_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
        pos = x > 0.0
        contrib = tl.where(pos, 0.0, g * x)
    return tl.where(pos, g, a * g), contrib


@triton.jit
def _prelu_bwd_planes_kernel(
    g_ptr, saved_ptr, w_ptr, dx_ptr, partial_ptr, rows, width, C,
    HAS_DX: tl.constexpr, HAS_DP: tl.constexpr, FROM_MASK: tl.constexpr, TILE_R: tl.constexpr, TILE_W: tl.constexpr,
):  # fmt: skip
    # rows = (sample, channel) planes of `width` elements; channel = row % C; partial[pid_w, row]
    pid_r = tl.program_id(0)
    pid_w = tl.program_id(1)
    r = pid_r * TILE_R + tl.arange(0, TILE_R)
    cols = pid_w * TILE_W + tl.arange(0, TILE_W)
    row_ok = r < rows
    in_bounds = row_ok[:, None] & (cols < width)[None, :]
    offs = r[:, None] * width + cols[None, :]
    a = tl.load(w_ptr + r % C, mask=row_ok, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    dx, contrib = _prelu_grads(g, saved_ptr, offs, in_bounds, a[:, None], FROM_MASK)
    if HAS_DX:
        tl.store(dx_ptr + offs, _store_cast(dx, dx_ptr), mask=in_bounds)
    if HAS_DP:
        tl.store(partial_ptr + pid_w * rows + r, _sum(contrib, 1), mask=row_ok)


@triton.jit
def _prelu_bwd_rows_kernel(
    g_ptr, saved_ptr, w_ptr, dx_ptr, partial_ptr, rows, width, inner, rows_per_program,
    HAS_DX: tl.constexpr, HAS_DP: tl.constexpr, FROM_MASK: tl.constexpr, TILE_R: tl.constexpr, TILE_W: tl.constexpr,
):  # fmt: skip
    # rows = samples of `width` = C * inner elements; channel = col // inner; partial[pid_r, col]
    pid_r = tl.program_id(0)
    pid_w = tl.program_id(1)
    cols = pid_w * TILE_W + tl.arange(0, TILE_W)
    col_ok = cols < width
    a = tl.load(w_ptr + cols // inner, mask=col_ok, other=0.0).to(tl.float32)
    acc = tl.full((TILE_R, TILE_W), 0.0, tl.float32)
    # A while loop over this program's row tiles: `for i in range(0, rows_per_program, TILE_R)` (a runtime
    # bound) does not run in Triton 3.6's interpreter with NumPy 2 (it converts the bound with int()).
    row = pid_r * rows_per_program
    end = tl.minimum(row + rows_per_program, rows)
    while row < end:
        r = row + tl.arange(0, TILE_R)
        in_bounds = (r < end)[:, None] & col_ok[None, :]
        offs = r[:, None] * width + cols[None, :]
        g = tl.load(g_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
        dx, contrib = _prelu_grads(g, saved_ptr, offs, in_bounds, a[None, :], FROM_MASK)
        if HAS_DX:
            tl.store(dx_ptr + offs, _store_cast(dx, dx_ptr), mask=in_bounds)
        acc += contrib
        row += TILE_R
    if HAS_DP:
        tl.store(partial_ptr + pid_r * width + cols, _sum(acc, 0), mask=col_ok)


def forward(
    x: Tensor,
    weight: Tensor,
    dim: int = 1,
    save_mask: bool = False,
    block: int | None = None,
    max_chunk: int = MAX_CHUNK,
) -> tuple[Tensor, Tensor]:
    """PReLU of a dense ``x``; ``weight`` has 1 value (shared) or ``x.shape[dim]`` values.

    Returns:
        ``(y, mask)``: ``y`` in ``x``'s dtype and layout; ``mask`` the packed ``x > 0`` bits when
        ``save_mask`` (in ``x``'s memory order), else empty.
    """
    y, mask = empty_outputs(x, save_mask)
    if x.numel() > 0:
        C, inner = channel_geometry(x, dim, weight.numel() > 1)
        launch_flat(
            _prelu_fwd_kernel, x.numel(), (flat(x), flat(y), Packed(mask)),
            (weight, C, *magic_divisor(inner), *magic_divisor(C)),
            period=C * inner, block=block, max_chunk=max_chunk, SAVE_MASK=save_mask,
        )  # fmt: skip
    return y, mask


def backward(
    grad: Tensor,
    saved: Tensor,
    weight: Tensor,
    dim: int = 1,
    from_mask: bool = False,
    need_dx: bool = True,
    need_dw: bool = True,
    planes_min_inner: int = PLANES_MIN_INNER,
    max_chunk: int = MAX_CHUNK,
) -> tuple[Tensor | None, Tensor | None]:
    """Gradients of PReLU in one pass over the data.

    Args:
        grad: gradient of the output, dense, in the forward input's memory order.
        saved: the forward's input (same layout as ``grad``), or the packed mask when ``from_mask``
            (then the weight gradient cannot be computed: it needs ``x``).
        weight: the slopes, 1 or ``C`` values.
        dim: the channel dimension.
        need_dx, need_dw: which gradients to produce.
        planes_min_inner, max_chunk: tiling knobs (tests use them to reach every code path).

    Returns:
        ``(dx, dw)``: ``dx`` like ``grad`` (or None), ``dw`` like ``weight`` (or None).
    """
    if from_mask and need_dw:
        raise ValueError("the PReLU weight gradient needs the input x, not a mask: save the input")
    return channel_backward(
        _prelu_bwd_planes_kernel, _prelu_bwd_rows_kernel, grad, saved, weight, dim,
        need_dx=need_dx, need_dp=need_dw, from_mask=from_mask, planes_min_inner=planes_min_inner,
        max_chunk=max_chunk, FROM_MASK=from_mask,
    )  # fmt: skip


BUILD = build_of(_prelu_fwd_kernel)
"""What these kernels were built with (the family contract of :mod:`rectlab.kernels`)."""
