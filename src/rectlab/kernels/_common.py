"""Shared pieces of the kernel families: Triton helpers, memory layouts and launch settings.

Kernels use only Triton builtins so that the interpreter works whatever was imported first (see
:mod:`rectlab.kernels`): reductions go through ``tl.reduce(..., tl.standard._sum_combine)``, which is
what ``tl.sum`` does and what the interpreter recognises and runs with NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import triton
import triton.language as tl
from torch import Tensor
from triton.runtime.interpreter import InterpretedFunction

from ._layout import channel_geometry, dense, flat, is_dense, like_layout, same_layout

__all__ = [
    "INTERPRET",
    "MAX_CHUNK",
    "PLANES_MIN_INNER",
    "TOKEN",
    "ReducePlan",
    "channel_geometry",
    "chunks",
    "dense",
    "flat",
    "flat_config",
    "interpreted",
    "is_dense",
    "magic_divisor",
    "like_layout",
    "reduce_partial",
    "reduce_plan",
    "same_layout",
    "tile_width",
]

MAX_CHUNK = 1 << 30
"""Most elements one launch covers; kernels index with int32, larger tensors are launched in chunks."""

TOKEN = object()
"""Identity of this module's execution; family modules record it to notice a reload (see ``load``)."""


@triton.jit
def _sum(x, AXIS: tl.constexpr):
    # The body of tl.sum without its dtype promotion: callers pass float32 or int32.
    return tl.reduce(x, AXIS, tl.standard._sum_combine)


@triton.jit
def _sigmoid(x):
    # sigmoid(x) = 1 / (1 + exp(-x)), written with e = exp(-|x|) <= 1 so that nothing overflows
    e = tl.exp(-tl.abs(x))
    r = 1.0 / (1.0 + e)
    return tl.where(x >= 0.0, r, e * r)


@triton.jit
def _fastdiv(n, magic, shift):
    # n // d for 0 <= n < 2**31 without an integer division: (umulhi(n, magic) + n) >> shift with
    # (magic, shift) = magic_divisor(d) (Granlund & Montgomery 1994; PyTorch's IntDivider). A few ALU ops
    # instead of a ~20-instruction division per element keeps channel indexing off the critical path.
    nu = n.to(tl.uint32, bitcast=True)
    q = (tl.umulhi(nu, magic.to(tl.uint32)) + nu) >> shift.to(tl.uint32)
    return q.to(tl.int32, bitcast=True)


@triton.jit
def _channel_of(offs, inner_magic, inner_shift, C, c_magic, c_shift):
    # (offs // inner) % C with two magic divisions
    q = _fastdiv(offs, inner_magic, inner_shift)
    return q - _fastdiv(q, c_magic, c_shift) * C


@triton.jit
def _pack_bits(bit, BLOCK: tl.constexpr):
    # BLOCK booleans -> BLOCK // 8 bytes, element 8k + j in bit j of byte k.
    b = tl.reshape(bit.to(tl.int32), (BLOCK // 8, 8))
    return _sum(b << tl.arange(0, 8)[None, :], 1).to(tl.uint8)


@triton.jit
def _unpack_bit(mask_ptr, offs, in_bounds):
    # The bit of element `offs`: bit offs % 8 of byte offs // 8 (neighbouring lanes share a byte in L1).
    byte = tl.load(mask_ptr + (offs >> 3), mask=in_bounds, other=0).to(tl.int32)
    return ((byte >> (offs & 7)) & 1) != 0


def interpreted(kernel: object) -> bool:
    """True when ``kernel`` was built by ``triton.jit`` for the Triton interpreter."""
    return isinstance(kernel, InterpretedFunction)


INTERPRET = interpreted(_sum)
"""Whether this module's kernels were built for the Triton interpreter."""

_ROUND_BF16_BY_HAND = tl.constexpr(INTERPRET)


@triton.jit
def _store_cast(y, ptr):
    # float32 -> the dtype behind `ptr`, rounding to nearest even. Compiled kernels get that from the
    # hardware conversion; Triton's interpreter truncates float32 -> bfloat16, so there the rounding is
    # done on the bits first (NaN kept as is) and the truncation is then exact.
    if _ROUND_BF16_BY_HAND and ptr.dtype.element_ty == tl.bfloat16:
        bits = y.to(tl.uint32, bitcast=True)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).to(tl.float32, bitcast=True)
        y = tl.where(y != y, y, rounded)
    return y.to(ptr.dtype.element_ty)


# ----------------------------------------------------------------------------------------------------
# Launch settings
# ----------------------------------------------------------------------------------------------------


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
    candidates = [1 << k for k in range(min(largest, triton.next_power_of_2(width)).bit_length())]
    candidates = [c for c in candidates if c >= min(16, triton.next_power_of_2(width))]

    def waste(c: int) -> float:
        return (triton.cdiv(width, c) * c - width) / (triton.cdiv(width, c) * c)

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


PLANES_MIN_INNER = 64
"""Channel strides from this size up use the ``planes`` tiling, smaller ones the ``rows`` tiling."""


def reduce_plan(numel: int, channels: int, inner: int, planes_min_inner: int = PLANES_MIN_INNER) -> ReducePlan:
    """Choose the tiling of a per-channel backward over ``numel`` elements (see :class:`ReducePlan`)."""
    tile = 2048
    if channels == 1 and inner == 1:  # shared parameter: one row, flat blocks
        width = numel
        tile_w = min(tile, triton.next_power_of_2(max(width, 1)))
        warps = 8 if tile_w >= 2048 else 4
        return ReducePlan("planes", 1, width, 1, tile_w, (1, triton.cdiv(width, tile_w)), 1, warps)
    if inner >= planes_min_inner:
        rows, width = numel // inner, inner
        tile_w = tile_width(width, 1024)
        tile_r = max(1, tile // tile_w)
        grid = (triton.cdiv(rows, tile_r), triton.cdiv(width, tile_w))
        return ReducePlan("planes", rows, width, tile_r, tile_w, grid, 1, 8)
    width = channels * inner
    rows = numel // width
    tile_w = tile_width(width, 256)
    tile_r = max(1, min(tile // tile_w, triton.next_power_of_2(rows)))
    n_w = triton.cdiv(width, tile_w)
    target = 1024  # programs: several waves on today's largest GPUs; partial = target * tile_w floats at most
    n_r = max(1, min(triton.cdiv(rows, tile_r), triton.cdiv(target, n_w)))
    rows_per_program = triton.cdiv(triton.cdiv(rows, n_r), tile_r) * tile_r
    n_r = triton.cdiv(rows, rows_per_program)
    return ReducePlan("rows", rows, width, tile_r, tile_w, (n_r, n_w), rows_per_program, 4)


def reduce_partial(partial: Tensor, plan: ReducePlan, channels: int, inner: int) -> Tensor:
    """Per-channel float32 sums of a buffer of partial sums: the small final reduction."""
    if plan.kind == "planes":  # [n_w, rows], row = (sample, channel)
        return partial.view(-1, channels).sum(0)
    return partial.view(partial.shape[0], channels, inner).sum((0, 2))  # [n_r, C * inner]
