"""The ``@triton.jit`` helpers shared by the kernel families, and what a family's kernels were built with.

Kernels use only Triton builtins so that the interpreter works whatever was imported first (see
`rectlab.kernels`): reductions go through ``tl.reduce(..., tl.standard._sum_combine)``, which is
what ``tl.sum`` does and what the interpreter recognises and runs with NumPy.

Each execution of this module (a first import, or a reload by `rectlab.kernels.load` when
``TRITON_INTERPRET`` changed) builds new helper objects; `EXECUTION` identifies that execution, and
every family module records the `rectlab.kernels.Build` its kernels were made with (the contract in
`rectlab.kernels`).
"""

from __future__ import annotations

import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

from . import Build

__all__ = ["EXECUTION", "INTERPRET", "build_of", "interpreted"]


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
"""Whether this module's helpers were built for the Triton interpreter."""

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


class _Execution:
    """A unique object per execution of this module (see `EXECUTION`)."""

    def __init__(self, interpret: bool) -> None:
        self.interpret = interpret

    def __repr__(self) -> str:
        return f"<rectlab.kernels._jit execution, {'interpreted' if self.interpret else 'compiled'}>"


EXECUTION = _Execution(INTERPRET)
"""This execution of the module: families built against the helpers of another execution are re-executed."""


def build_of(kernel: object) -> Build:
    """The `rectlab.kernels.Build` of a family whose kernels include ``kernel``: write
    ``BUILD = build_of(<a kernel>)`` at the end of the family module."""
    return Build(interpreted(kernel), EXECUTION)
