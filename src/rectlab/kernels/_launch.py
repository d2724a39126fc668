"""Launch planning and the host loops shared by the kernel families (no ``@triton.jit`` code here).

* `flat_config`, `chunks`, `magic_divisor`: the flat 1-D launches over a dense tensor's
  memory, split into int32-indexable pieces.
* `ReducePlan`, `reduce_plan`, `reduce_partial`: how a backward that also reduces a
  per-channel parameter gradient tiles the tensor, and the small final sum.
* `launch_flat` and `channel_backward`: the host loops themselves, one place for every family
  (elementwise, RReLU, the PReLU / Swish forwards; the PReLU / Swish backwards).

Kernel signatures follow one convention so that these loops can launch any family's kernels:

* flat kernels: ``kernel(*operands, n, *extra, **constexprs)``: ``operands`` are full-size flat tensors
  (sliced at each launch's start) and packed 1-bit masks (sliced at ``start // 8``), ``n`` the elements of
  the launch, ``extra`` whatever else the kernel takes (parameters, seeds, scalars);
* per-channel backward kernels: ``kernel(g_ptr, saved_ptr, param_ptr, dx_ptr, partial_ptr, rows, width,
  <C | inner, rows_per_program>, HAS_DX=, HAS_DP=, TILE_R=, TILE_W=, **constexprs)`` (the ``planes`` kernel
  takes ``C``, the ``rows`` kernel ``inner, rows_per_program``; see `ReducePlan`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ._layout import channel_geometry, flat

__all__ = [
    "MAX_CHUNK",
    "PLANES_MIN_INNER",
    "Packed",
    "ReducePlan",
    "channel_backward",
    "chunks",
    "empty_outputs",
    "flat_config",
    "launch_flat",
    "magic_divisor",
    "reduce_partial",
    "reduce_plan",
    "tile_width",
]

MAX_CHUNK = 1 << 30
"""Most elements one launch covers; kernels index with int32, larger tensors are launched in chunks."""

PLANES_MIN_INNER = 64
"""Channel strides from this size up use the ``planes`` tiling, smaller ones the ``rows`` tiling."""


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _next_power_of_2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def flat_config(n: int) -> tuple[int, int]:
    """``(BLOCK, num_warps)`` of the flat 1-D kernels for ``n`` elements.

    Small tensors get 1024-element blocks so that more programs share the SMs; large ones 2048 with 8
    warps (8 elements a thread: one 16-byte access in bf16, two in fp32).
    """
    if n <= 1 << 20:
        return 1024, 4
    return 2048, 8


def magic_divisor(d: int) -> tuple[int, int]:
    """``(magic, shift)`` such that ``n // d == (umulhi(n, magic) + n) >> shift`` for ``0 <= n < 2**31``."""
    if not 1 <= d <= 2**31 - 1:
        raise ValueError(f"divisor must be in [1, 2**31), got {d}")
    shift = max(0, (d - 1).bit_length())  # smallest shift with 2**shift >= d
    magic = ((1 << 32) * ((1 << shift) - d)) // d + 1
    return magic, shift


def tile_width(width: int, largest: int) -> int:
    """A power-of-two tile width for rows of ``width`` elements: the largest up to ``largest`` that leaves at
    most 1/8 of the lanes masked off, else the one that leaves the fewest."""
    candidates = [1 << k for k in range(min(largest, _next_power_of_2(width)).bit_length())]
    candidates = [c for c in candidates if c >= min(16, _next_power_of_2(width))]

    def waste(c: int) -> float:
        return (_cdiv(width, c) * c - width) / (_cdiv(width, c) * c)

    good = [c for c in candidates if waste(c) <= 0.125]
    return max(good) if good else min(candidates, key=lambda c: (waste(c), -c))


def chunks(n: int, period: int = 1, max_chunk: int = MAX_CHUNK) -> Iterator[tuple[int, int]]:
    """Split ``[0, n)`` into ``(start, length)`` pieces of at most ``max_chunk`` elements.

    Every start is a multiple of ``lcm(period, 8)``, so a channel pattern of that period restarts at each
    piece and packed masks (8 elements a byte) and RReLU's Philox counters (4 elements each) stay aligned.
    """
    step = math.lcm(period, 8)
    if n <= max_chunk:
        yield 0, n
        return
    if step > max_chunk:
        raise NotImplementedError(
            f"one channel period of {period} elements is more than the {max_chunk} elements a launch can index; "
            "use backend='torch' for this tensor"
        )
    size = (max_chunk // step) * step
    for start in range(0, n, size):
        yield start, min(size, n - start)


# ----------------------------------------------------------------------------------------------------
# Flat launches
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packed:
    """An operand of `launch_flat` that holds 1 bit an element (8 a byte): sliced at ``start // 8``."""

    tensor: Tensor


def launch_flat(
    kernel: Any,
    n: int,
    operands: Sequence[Tensor | Packed],
    extra: tuple | Callable[[int], tuple] = (),
    *,
    period: int = 1,
    block: int | None = None,
    max_chunk: int = MAX_CHUNK,
    **constexprs: Any,
) -> None:
    """Launch a flat kernel over ``n`` elements, in pieces of at most ``max_chunk`` (see `chunks`).

    Args:
        kernel: a ``@triton.jit`` kernel called as ``kernel(*operands, n, *extra, BLOCK=, **constexprs)``.
        n: elements to cover.
        operands: flat (1-D, memory-order) tensors of ``n`` elements, and `Packed` masks.
        extra: the remaining arguments, or a function of the piece's start that returns them (RReLU's
            counter offset depends on it).
        period: a channel period that every piece must start on (``C * inner`` for per-channel kernels).
        block: elements a program (default `flat_config`); tests use small ones.
        max_chunk: elements a launch.
    """
    blk, warps = flat_config(n)
    blk = block or blk
    for start, length in chunks(n, period, max_chunk):
        args = [t.tensor[start // 8 :] if isinstance(t, Packed) else t[start:] for t in operands]
        more = extra(start) if callable(extra) else extra
        kernel[(_cdiv(length, blk),)](*args, length, *more, BLOCK=blk, num_warps=warps, **constexprs)


def empty_outputs(x: Tensor, save_mask: bool) -> tuple[Tensor, Tensor]:
    """``(y, mask)`` for a flat forward: ``y`` like ``x`` (same layout); ``mask`` ``ceil(numel / 8)`` bytes when
    ``save_mask``, else empty."""
    y = torch.empty_like(x)
    mask = torch.empty((x.numel() + 7) // 8 if save_mask else 0, dtype=torch.uint8, device=x.device)
    return y, mask


# ----------------------------------------------------------------------------------------------------
# Per-channel backward: input gradient and parameter gradient in one pass
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReducePlan:
    """How a backward kernel that also reduces a per-channel parameter gradient tiles a dense tensor.

    The tensor is seen as a matrix of ``rows x width`` elements (row-major in memory):

    * ``planes``: each row is one (sample, channel) plane of ``inner`` elements, channel ``row % C``;
      used when ``inner`` is large (NCHW feature maps). Programs tile ``[TILE_R, TILE_W]``, sum each
      tile row, and write ``partial[pid_w, row]``: ``numel / TILE_W`` floats in all.
    * ``rows``: each row is one sample of ``C * inner`` elements, channel ``col // inner``; used when
      ``inner`` is small (channels_last, ``(N, C)``, ``(N, L, C)``). A program owns a column block and
      walks ``rows_per_program`` rows, summing columns in registers, and writes ``partial[pid_r, col]``.

    Either way the parameter gradient is a small sum over ``partial`` afterwards (Triton's layer-norm
    tutorial pattern), never a full-size temporary, and the result does not depend on timing (no atomics).
    """

    kind: str
    rows: int
    width: int
    tile_r: int
    tile_w: int
    grid: tuple[int, int]
    rows_per_program: int
    num_warps: int

    @property
    def partial_shape(self) -> tuple[int, int]:
        """Shape of the float32 buffer of partial sums."""
        if self.kind == "planes":
            return self.grid[1], self.rows
        return self.grid[0], self.width


def reduce_plan(numel: int, channels: int, inner: int, planes_min_inner: int = PLANES_MIN_INNER) -> ReducePlan:
    """Choose the tiling of a per-channel backward over ``numel`` elements (see `ReducePlan`)."""
    tile = 2048
    if channels == 1 and inner == 1:  # shared parameter: one row, flat blocks
        width = numel
        tile_w = min(tile, _next_power_of_2(max(width, 1)))
        warps = 8 if tile_w >= 2048 else 4
        return ReducePlan("planes", 1, width, 1, tile_w, (1, _cdiv(width, tile_w)), 1, warps)
    if inner >= planes_min_inner:
        rows, width = numel // inner, inner
        tile_w = tile_width(width, 1024)
        tile_r = max(1, tile // tile_w)
        grid = (_cdiv(rows, tile_r), _cdiv(width, tile_w))
        return ReducePlan("planes", rows, width, tile_r, tile_w, grid, 1, 8)
    width = channels * inner
    rows = numel // width
    tile_w = tile_width(width, 256)
    tile_r = max(1, min(tile // tile_w, _next_power_of_2(rows)))
    n_w = _cdiv(width, tile_w)
    target = 1024  # programs: several waves on today's largest GPUs; partial = target * tile_w floats at most
    n_r = max(1, min(_cdiv(rows, tile_r), _cdiv(target, n_w)))
    rows_per_program = _cdiv(_cdiv(rows, n_r), tile_r) * tile_r
    n_r = _cdiv(rows, rows_per_program)
    return ReducePlan("rows", rows, width, tile_r, tile_w, (n_r, n_w), rows_per_program, 4)


def reduce_partial(partial: Tensor, plan: ReducePlan, channels: int, inner: int) -> Tensor:
    """Per-channel float32 sums of a buffer of partial sums: the small final reduction."""
    if plan.kind == "planes":  # [n_w, rows], row = (sample, channel)
        return partial.view(-1, channels).sum(0)
    return partial.view(partial.shape[0], channels, inner).sum((0, 2))  # [n_r, C * inner]


def channel_backward(
    planes_kernel: Any,
    rows_kernel: Any,
    grad: Tensor,
    saved: Tensor,
    param: Tensor,
    dim: int,
    *,
    need_dx: bool,
    need_dp: bool,
    from_mask: bool = False,
    planes_min_inner: int = PLANES_MIN_INNER,
    max_chunk: int = MAX_CHUNK,
    **constexprs: Any,
) -> tuple[Tensor | None, Tensor | None]:
    """The one-pass backward of an activation with a per-channel (or shared) parameter.

    Args:
        planes_kernel, rows_kernel: the family's two tilings (see `ReducePlan` and the module docstring
            for their signature).
        grad: gradient of the output, dense, in the forward input's memory order.
        saved: the forward's input (same layout as ``grad``), or the packed mask when ``from_mask``.
        param: 1 or ``C`` values.
        dim: the channel dimension.
        need_dx, need_dp: which gradients to produce.
        from_mask: ``saved`` is a packed 1-bit mask (sliced at ``start // 8`` per launch).
        planes_min_inner, max_chunk: tiling knobs (tests use them to reach every code path).
        constexprs: more compile-time flags of the family's kernels.

    Returns:
        ``(dx, dparam)``: ``dx`` like ``grad`` (or None); ``dparam`` like ``param``, reduced in float32 and
        returned in ``param``'s dtype (or None).
    """
    n = grad.numel()
    dx = torch.empty_like(grad) if need_dx else None
    dp = torch.zeros(param.numel(), dtype=torch.float32, device=grad.device) if need_dp else None
    if n > 0 and (need_dx or need_dp):
        C, inner = channel_geometry(grad, dim, param.numel() > 1)
        gf = flat(grad)
        sf = saved if from_mask else flat(saved)
        df = flat(dx) if dx is not None else gf
        for start, length in chunks(n, C * inner, max_chunk):
            plan = reduce_plan(length, C, inner, planes_min_inner)
            partial = torch.empty(plan.partial_shape if need_dp else (1,), dtype=torch.float32, device=grad.device)
            s = sf[start // 8 :] if from_mask else sf[start:]
            args = (gf[start:], s, param, df[start:], partial, plan.rows, plan.width)
            flags = {"HAS_DX": need_dx, "HAS_DP": need_dp, "TILE_R": plan.tile_r, "TILE_W": plan.tile_w, **constexprs}
            if plan.kind == "planes":
                planes_kernel[plan.grid](*args, C, **flags, num_warps=plan.num_warps)
            else:
                rows_kernel[plan.grid](*args, inner, plan.rows_per_program, **flags, num_warps=plan.num_warps)
            if dp is not None:
                dp += reduce_partial(partial, plan, C, inner)
    return dx, None if dp is None else dp.to(param.dtype).reshape(param.shape)
