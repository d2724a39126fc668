"""Batched augmentation and batching for datasets held as tensors (on any device).

Everything here works on a whole batch at once with tensor ops, in the spirit of airbench: no
per-image Python loop, so the data can stay on the GPU. Randomness comes only from the
``generator`` passed in; the same generator state gives the same result. Random numbers are drawn
on the generator's device and moved to the data, so a CPU generator gives identical crops and
flips whether the images are on the CPU or a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError

__all__ = ["iterate_batches", "normalize", "random_crop_flip"]


def _rand_device(generator: torch.Generator | None, x: Tensor) -> torch.device:
    return generator.device if generator is not None else x.device


def random_crop_flip(x: Tensor, padding: int, flip: bool, generator: torch.Generator | None = None) -> Tensor:
    """Random crops after zero padding, and random horizontal flips, for a batch (N, C, H, W).

    Each image is padded by ``padding`` pixels on every side and a window of the original size is
    taken at a random offset in ``[0, 2 * padding]`` per axis; with ``flip``, each image is mirrored
    left-right with probability 1/2. Both happen in one gather: the flip just reverses the column
    indices of the crop window.

    Args:
        x: images of any dtype (uint8 is cheapest: augment before [`normalize`][rectlab.data.normalize]).
        padding: pixels of zero padding; 0 = no crop.
        flip: whether to flip at random.
        generator: source of randomness (draws: row offsets, column offsets, flip coins, in that order).

    Returns:
        A new tensor shaped like ``x`` (``x`` itself when there is nothing to do).
    """
    if x.ndim != 4:
        raise InputError(f"random_crop_flip expects a batch (N, C, H, W), got shape {tuple(x.shape)}")
    if padding < 0:
        raise InputError(f"padding must be >= 0, got {padding}")
    if padding == 0 and not flip:
        return x
    n, c, h, w = x.shape
    device = _rand_device(generator, x)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device).to(x.device)
    padded = F.pad(x, (padding,) * 4) if padding else x
    rows = dy[:, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = torch.arange(w, device=x.device).expand(n, w)
    if flip:
        mirrored = torch.rand(n, generator=generator, device=device).to(x.device) < 0.5
        cols = torch.where(mirrored[:, None], cols.flip(1), cols)
    cols = dx[:, None] + cols  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float], dtype: torch.dtype = torch.float32) -> Tensor:
    """``(x / 255 - mean) / std`` per channel for uint8 images (N, C, H, W); floats are taken as already in [0, 1].

    The arithmetic runs in float32 (or float64 if asked) and the result is cast to ``dtype``, so a
    bfloat16 result is the rounded float32 value.
    """
    if x.ndim != 4:
        raise InputError(f"normalize expects a batch (N, C, H, W), got shape {tuple(x.shape)}")
    if len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise InputError(f"mean/std have {len(mean)}/{len(std)} values for {x.shape[1]} channels")
    work = torch.float64 if dtype == torch.float64 else torch.float32
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    m = torch.tensor(mean, dtype=work, device=x.device).view(1, -1, 1, 1) * scale
    s = torch.tensor(std, dtype=work, device=x.device).view(1, -1, 1, 1) * scale
    return ((x.to(work) - m) / s).to(dtype)


def iterate_batches(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(x[idx], y[idx])`` batches covering the data once (one epoch).

    With ``shuffle``, one random permutation is drawn from ``generator`` per call; without it, the
    batches are contiguous slices (views, no copy). ``drop_last`` skips a final short batch.
    """
    if len(x) != len(y):
        raise InputError(f"x has {len(x)} examples but y has {len(y)}")
    if batch_size <= 0:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    n = len(x)
    stop = n - n % batch_size if drop_last else n
    if not shuffle:
        for start in range(0, stop, batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
        return
    order = torch.randperm(n, generator=generator, device=_rand_device(generator, x)).to(x.device)
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx.to(y.device)]
