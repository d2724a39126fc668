"""Activations with a per-channel (or shared) parameter: PReLU and Swish, the op a compile-time constant.

    PReLU (He et al. 2015)           y = x for x > 0, a_c x otherwise
        dL/dx   = g for x > 0, a_c g otherwise
        dL/da_c = sum over the elements of channel c with x <= 0 of g x
    Swish (Ramachandran et al. 2017)  y = x s,  s = sigmoid(b_c x)
        dL/dx   = g (s + b_c x s (1 - s))
        dL/db_c = sum over channel c of g x^2 s (1 - s)

Forward: a flat 1-D grid over the dense tensor's memory; the channel of memory offset ``o`` is
``(o // inner) % C`` (``inner`` = the channel dim's stride: ``H*W`` for NCHW, 1 for channels_last,
``(N, C)`` and ``(N, L, C)``), so no layout is copied.

Backward: one pass that writes the input gradient and, per program, partial sums of the parameter
gradient into a small float32 buffer, reduced afterwards (`rectlab.kernels._launch.ReducePlan`;
the host loop is `rectlab.kernels._launch.channel_backward`). PReLU can save a packed 1-bit mask
instead of ``x`` when its weight is frozen (its weight gradient needs ``x``).
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from ._jit import _channel_of, _pack_bits, _sigmoid, _store_cast, _sum, _unpack_bit, build_of
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

__all__ = ["BUILD", "PROGRAMS", "backward", "forward"]

PROGRAMS = ("prelu", "swish")
"""The programs of this family (named like the ops of `rectlab.activations.ops`), one branch each in
`_act_fwd` / `_act_grads`."""


@triton.jit
def _act_fwd(x, p, OP: tl.constexpr):
    if OP == "prelu":
        y = tl.where(x > 0.0, x, p * x)
    else:
        tl.static_assert(OP == "swish", "unknown per-channel op")
        y = x * _sigmoid(p * x)
    return y


@triton.jit
def _act_grads(g, saved_ptr, offs, in_bounds, p, OP: tl.constexpr, FROM_MASK: tl.constexpr):
    # (dL/dx, this element's contribution to dL/dp); `saved_ptr` holds x, or PReLU's packed x > 0 bits
    if OP == "prelu":
        if FROM_MASK:
            pos = _unpack_bit(saved_ptr, offs, in_bounds)
            contrib = g * 0.0
        else:
            x = tl.load(saved_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
            pos = x > 0.0
            contrib = tl.where(pos, 0.0, g * x)  # 0 at x == 0 either way
        dx = tl.where(pos, g, p * g)
    else:
        x = tl.load(saved_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
        s = _sigmoid(p * x)
        ds = s * (1.0 - s)
        dx = g * (s + p * x * ds)
        contrib = g * x * x * ds
    return dx, contrib


@triton.jit(do_not_specialize=["inner_magic", "inner_shift", "c_magic", "c_shift"])
def _channel_fwd_kernel(
    x_ptr, y_ptr, mask_ptr, n, p_ptr, C, inner_magic, inner_shift, c_magic, c_shift,
    OP: tl.constexpr, SAVE_MASK: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    # y = f(x, p_c),  c = (offset // inner) % C
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    in_bounds = offs < n
    x = tl.load(x_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    c = _channel_of(offs, inner_magic, inner_shift, C, c_magic, c_shift)
    p = tl.load(p_ptr + c, mask=in_bounds, other=0.0).to(tl.float32)
    tl.store(y_ptr + offs, _store_cast(_act_fwd(x, p, OP), y_ptr), mask=in_bounds)
    if SAVE_MASK:
        byte_offs = pid * (BLOCK // 8) + tl.arange(0, BLOCK // 8)
        tl.store(mask_ptr + byte_offs, _pack_bits((x > 0.0) & in_bounds, BLOCK), mask=byte_offs < (n + 7) // 8)


@triton.jit
def _channel_bwd_planes_kernel(
    g_ptr, saved_ptr, p_ptr, dx_ptr, partial_ptr, rows, width, C,
    HAS_DX: tl.constexpr, HAS_DP: tl.constexpr, OP: tl.constexpr, FROM_MASK: tl.constexpr,
    TILE_R: tl.constexpr, TILE_W: tl.constexpr,
):  # fmt: skip
    # rows = (sample, channel) planes of `width` elements; channel = row % C; partial[pid_w, row]
    pid_r = tl.program_id(0)
    pid_w = tl.program_id(1)
    r = pid_r * TILE_R + tl.arange(0, TILE_R)
    cols = pid_w * TILE_W + tl.arange(0, TILE_W)
    row_ok = r < rows
    in_bounds = row_ok[:, None] & (cols < width)[None, :]
    offs = r[:, None] * width + cols[None, :]
    p = tl.load(p_ptr + r % C, mask=row_ok, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=in_bounds, other=0.0).to(tl.float32)
    dx, contrib = _act_grads(g, saved_ptr, offs, in_bounds, p[:, None], OP, FROM_MASK)
    if HAS_DX:
        tl.store(dx_ptr + offs, _store_cast(dx, dx_ptr), mask=in_bounds)
    if HAS_DP:
        tl.store(partial_ptr + pid_w * rows + r, _sum(contrib, 1), mask=row_ok)


@triton.jit
def _channel_bwd_rows_kernel(
    g_ptr, saved_ptr, p_ptr, dx_ptr, partial_ptr, rows, width, inner, rows_per_program,
    HAS_DX: tl.constexpr, HAS_DP: tl.constexpr, OP: tl.constexpr, FROM_MASK: tl.constexpr,
    TILE_R: tl.constexpr, TILE_W: tl.constexpr,
):  # fmt: skip
    # rows = samples of `width` = C * inner elements; channel = col // inner; partial[pid_r, col]
    pid_r = tl.program_id(0)
    pid_w = tl.program_id(1)
    cols = pid_w * TILE_W + tl.arange(0, TILE_W)
    col_ok = cols < width
    p = tl.load(p_ptr + cols // inner, mask=col_ok, other=0.0).to(tl.float32)
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
        dx, contrib = _act_grads(g, saved_ptr, offs, in_bounds, p[None, :], OP, FROM_MASK)
        if HAS_DX:
            tl.store(dx_ptr + offs, _store_cast(dx, dx_ptr), mask=in_bounds)
        acc += contrib
        row += TILE_R
    if HAS_DP:
        tl.store(partial_ptr + pid_r * width + cols, _sum(acc, 0), mask=col_ok)


def _check_op(op: str, mask: bool) -> None:
    if op not in PROGRAMS:
        raise ValueError(f"unknown per-channel program {op!r}; known: {', '.join(PROGRAMS)}")
    if mask and op != "prelu":
        raise ValueError(f"a packed mask works for PReLU only, not {op!r}")


def forward(
    x: Tensor,
    param: Tensor,
    op: str,
    dim: int = 1,
    save_mask: bool = False,
    block: int | None = None,
    max_chunk: int = MAX_CHUNK,
) -> tuple[Tensor, Tensor]:
    """Program ``op`` (`PROGRAMS`) of a dense ``x`` with ``param`` of 1 value (shared) or ``x.shape[dim]`` values.

    Args:
        save_mask: PReLU only: also return the packed ``x > 0`` bits for a backward without ``x``.
        block, max_chunk: elements a program and a launch (tests use small ones).

    Returns:
        ``(y, mask)``: ``y`` in ``x``'s dtype and layout; ``mask`` the packed bits when ``save_mask`` (in
        ``x``'s memory order), else empty.
    """
    _check_op(op, save_mask)
    y, mask = empty_outputs(x, save_mask)
    if x.numel() > 0:
        C, inner = channel_geometry(x, dim, param.numel() > 1)
        launch_flat(
            _channel_fwd_kernel, x.numel(), (flat(x), flat(y), Packed(mask)),
            (param, C, *magic_divisor(inner), *magic_divisor(C)),
            period=C * inner, block=block, max_chunk=max_chunk, OP=op, SAVE_MASK=save_mask,
        )  # fmt: skip
    return y, mask


def backward(
    grad: Tensor,
    saved: Tensor,
    param: Tensor,
    op: str,
    dim: int = 1,
    from_mask: bool = False,
    need_dx: bool = True,
    need_dp: bool = True,
    planes_min_inner: int = PLANES_MIN_INNER,
    max_chunk: int = MAX_CHUNK,
) -> tuple[Tensor | None, Tensor | None]:
    """Gradients of ``op`` in one pass over the data.

    Args:
        grad: gradient of the output, dense, in the forward input's memory order.
        saved: the forward's input (same layout as ``grad``), or PReLU's packed mask when ``from_mask``
            (then the weight gradient cannot be computed: it needs ``x``).
        param: 1 or ``C`` values.
        op: one of `PROGRAMS`.
        dim: the channel dimension.
        need_dx, need_dp: which gradients to produce.
        planes_min_inner, max_chunk: tiling knobs (tests use them to reach every code path).

    Returns:
        ``(dx, dparam)``: ``dx`` like ``grad`` (or None), ``dparam`` like ``param`` (or None).
    """
    _check_op(op, from_mask)
    if from_mask and need_dp:
        raise ValueError("the PReLU weight gradient needs the input x, not a mask: save the input")
    return channel_backward(
        _channel_bwd_planes_kernel, _channel_bwd_rows_kernel, grad, saved, param, dim,
        need_dx=need_dx, need_dp=need_dp, from_mask=from_mask, planes_min_inner=planes_min_inner,
        max_chunk=max_chunk, OP=op, FROM_MASK=from_mask,
    )  # fmt: skip


BUILD = build_of(_channel_fwd_kernel)
"""What these kernels were built with (the family contract of `rectlab.kernels`)."""
