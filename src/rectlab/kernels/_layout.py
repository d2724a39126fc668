"""Memory-layout helpers shared by the kernel hosts and `rectlab.activations.fused` (no Triton here).

Kernels walk a *dense* tensor's memory directly: contiguous, channels_last, or any permutation of a
contiguous tensor. Other inputs (stepped slices, expanded views) are copied to contiguous first.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["channel_geometry", "dense", "flat", "is_dense", "like_layout", "same_layout"]


def is_dense(x: Tensor) -> bool:
    """True when ``x`` covers a gap-free block of memory: a permutation of a contiguous tensor.

    Contiguous and channels_last tensors are dense, so are transposes of them; slices with steps and
    expanded tensors are not.
    """
    dims = sorted((x.stride(i), x.shape[i]) for i in range(x.dim()) if x.shape[i] != 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def dense(x: Tensor) -> Tensor:
    """``x`` itself when dense, else a contiguous copy."""
    return x if is_dense(x) else x.contiguous()


def same_layout(a: Tensor, b: Tensor) -> bool:
    """True when ``a`` and ``b`` have one shape and lay their elements out in one memory order."""
    if a.shape != b.shape:
        return False
    return all(a.stride(i) == b.stride(i) for i in range(a.dim()) if a.shape[i] != 1)


def like_layout(src: Tensor, ref: Tensor) -> Tensor:
    """``src`` in the memory order of the dense tensor ``ref``: ``src`` itself when it already is."""
    if same_layout(src, ref) and is_dense(src):
        return src
    out = torch.empty_strided(ref.shape, ref.stride(), dtype=src.dtype, device=src.device)
    out.copy_(src)
    return out


def flat(t: Tensor) -> Tensor:
    """The memory of a dense tensor as a 1-D view, in memory order."""
    return t.as_strided((t.numel(),), (1,))


def channel_geometry(x: Tensor, dim: int, per_channel: bool) -> tuple[int, int]:
    """``(C, inner)`` of a dense ``x``: the channel of memory offset ``o`` is ``(o // inner) % C``.

    For a dense tensor the index along ``dim`` of offset ``o`` is ``(o // stride[dim]) % shape[dim]``,
    whatever the order of the other dims: NCHW gives ``inner = H*W``, channels_last and ``(N, L, C)``
    give ``inner = 1``. A shared parameter gives ``(1, 1)``.
    """
    if not per_channel:
        return 1, 1
    d = dim % x.dim()
    return x.shape[d], x.stride(d)
