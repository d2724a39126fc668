"""PReLU (He et al. 2015): ``y = x`` for ``x > 0``, ``a_c * x`` otherwise, ``a`` shared or one per channel.

Forward: a flat 1-D grid over the dense tensor's memory; the channel of memory offset ``o`` is
``(o // inner) % C`` (``inner`` = the channel dim's stride: ``H*W`` for NCHW, 1 for channels_last,
``(N, C)`` and ``(N, L, C)``), so no layout is copied.

Backward: one pass that writes the input gradient and, per program, partial sums of the weight
gradient into a small float32 buffer, reduced afterwards (see :class:`~rectlab.kernels._common.ReducePlan`).

    dL/dx   = g          for x > 0,  a_c * g otherwise
    dL/da_c = sum over the elements of channel c with x <= 0 of g * x
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
    _pack_bits,
    _store_cast,
    _sum,
    _unpack_bit,
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
def _prelu_fwd_kernel(
    x_ptr, w_ptr, y_ptr, mask_ptr, n, C, inner_magic, inner_shift, c_magic, c_shift,
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
    HAS_DX: tl.constexpr, HAS_DW: tl.constexpr, FROM_MASK: tl.constexpr, TILE_R: tl.constexpr, TILE_W: tl.constexpr,
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
    if HAS_DW:
        tl.store(partial_ptr + pid_w * rows + r, _sum(contrib, 1), mask=row_ok)


@triton.jit
def _prelu_bwd_rows_kernel(
    g_ptr, saved_ptr, w_ptr, dx_ptr, partial_ptr, rows, width, inner, rows_per_program,
    HAS_DX: tl.constexpr, HAS_DW: tl.constexpr, FROM_MASK: tl.constexpr, TILE_R: tl.constexpr, TILE_W: tl.constexpr,
):  # fmt: skip
    # rows = samples of `width` = C * inner elements; channel = col // inner; partial[pid_r, col]
    pid_r = tl.program_id(0)
    pid_w = tl.program_id(1)
    cols = pid_w * TILE_W + tl.arange(0, TILE_W)
    col_ok = cols < width
    a = tl.load(w_ptr + cols // inner, mask=col_ok, other=0.0).to(tl.float32)
    acc = tl.full((TILE_R, TILE_W), 0.0, tl.float32)
    row0 = pid_r * rows_per_program
    for i in range(0, rows_per_program, TILE_R):
        r = row0 + i + tl.arange(0, TILE_R)
        in_bounds = (r < rows)[:, None] & col_ok[None, :]
        offs = r[:, None] * width + cols[None, :]
        g = tl.load(g_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
        dx, contrib = _prelu_grads(g, saved_ptr, offs, in_bounds, a[None, :], FROM_MASK)
        if HAS_DX:
            tl.store(dx_ptr + offs, _store_cast(dx, dx_ptr), mask=in_bounds)
        acc += contrib
    if HAS_DW:
        tl.store(partial_ptr + pid_r * width + cols, _sum(acc, 0), mask=col_ok)


INTERPRET = interpreted(_prelu_fwd_kernel)
"""Whether these kernels were built for the Triton interpreter (see :func:`rectlab.kernels.load`)."""


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
    n = x.numel()
    y = torch.empty_like(x)
    mask = torch.empty((n + 7) // 8 if save_mask else 0, dtype=torch.uint8, device=x.device)
    if n == 0:
        return y, mask
    C, inner = channel_geometry(x, dim, weight.numel() > 1)
    blk, warps = flat_config(n)
    blk = block or blk
    xf, yf = flat(x), flat(y)
    for start, length in chunks(n, C * inner, max_chunk):
        m = mask[start // 8 :] if save_mask else mask
        _prelu_fwd_kernel[(triton.cdiv(length, blk),)](
            xf[start:], weight, yf[start:], m, length, C, *magic_divisor(inner), *magic_divisor(C),
            SAVE_MASK=save_mask, BLOCK=blk, num_warps=warps,
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
    n = grad.numel()
    per_channel = weight.numel() > 1
    dx = torch.empty_like(grad) if need_dx else None
    dw = torch.zeros(weight.numel(), dtype=torch.float32, device=grad.device) if need_dw else None
    if n == 0 or not (need_dx or need_dw):
        return dx, None if dw is None else dw.to(weight.dtype).reshape(weight.shape)
    C, inner = channel_geometry(grad, dim, per_channel)
    gf = flat(grad)
    sf = saved if from_mask else flat(saved)
    df = flat(dx) if dx is not None else gf
    for start, length in chunks(n, C * inner, max_chunk):
        plan = reduce_plan(length, C, inner, planes_min_inner)
        partial = torch.empty(plan.partial_shape if need_dw else (1,), dtype=torch.float32, device=grad.device)
        s = sf[start // 8 :] if from_mask else sf[start:]
        args = (gf[start:], s, weight, df[start:], partial, plan.rows, plan.width)
        flags = {"HAS_DX": need_dx, "HAS_DW": need_dw, "FROM_MASK": from_mask, "TILE_R": plan.tile_r}
        if plan.kind == "planes":
            _prelu_bwd_planes_kernel[plan.grid](*args, C, **flags, TILE_W=plan.tile_w, num_warps=plan.num_warps)
        else:
            _prelu_bwd_rows_kernel[plan.grid](
                *args, inner, plan.rows_per_program, **flags, TILE_W=plan.tile_w, num_warps=plan.num_warps
            )
        if dw is not None:
            dw += reduce_partial(partial, plan, C, inner)
    return dx, None if dw is None else dw.to(weight.dtype).reshape(weight.shape)
