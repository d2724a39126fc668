"""Batched augmentation (random crop + flip), normalisation and in-memory batching."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rectlab.data.augment import iterate_batches, normalize, random_crop_flip


def images(n: int = 16, c: int = 3, h: int = 7, w: int = 9, seed: int = 0) -> torch.Tensor:
    """Random uint8 images in 1..255 (never 0, so padding zeros are recognisable)."""
    return torch.randint(1, 256, (n, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize(("padding", "flip"), [(0, True), (2, False), (2, True), (4, True)])
def test_shape_dtype_determinism(dtype: torch.dtype, padding: int, flip: bool) -> None:
    x = images().to(dtype)
    out = random_crop_flip(x, padding, flip, gen(1))
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.equal(out, random_crop_flip(x, padding, flip, gen(1)))
    assert not torch.equal(out, random_crop_flip(x, padding, flip, gen(2)))


def test_nothing_to_do_returns_input() -> None:
    x = images()
    assert random_crop_flip(x, 0, False, gen(0)) is x


def test_crop_equals_slice_of_padded_image() -> None:
    """Offsets follow the documented draw order: rows, then columns, each uniform in [0, 2 * padding]."""
    x, p = images(n=32), 3
    out = random_crop_flip(x, p, False, gen(5))
    g = gen(5)
    dy = torch.randint(0, 2 * p + 1, (32,), generator=g)
    dx = torch.randint(0, 2 * p + 1, (32,), generator=g)
    padded = F.pad(x, (p, p, p, p))
    h, w = x.shape[2:]
    for i in (0, 7, 31):
        assert torch.equal(out[i], padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w])
    assert len(set(zip(dy.tolist(), dx.tolist()))) > 10  # offsets really vary per sample
    assert (out == 0).any()  # some crops reach into the zero padding


def test_every_output_is_a_window_or_mirrored_window() -> None:
    """Independent of the draw order: each output is exactly one window of its padded input, maybe mirrored."""
    x, p = images(n=40), 2
    out = random_crop_flip(x, p, True, gen(3))
    padded = F.pad(x, (p, p, p, p))
    h, w = x.shape[2:]
    flipped = 0
    for i in range(len(x)):
        windows = [padded[i, :, a : a + h, b : b + w] for a in range(2 * p + 1) for b in range(2 * p + 1)]
        plain = any(torch.equal(out[i], win) for win in windows)
        mirrored = any(torch.equal(out[i], win.flip(-1)) for win in windows)
        assert plain or mirrored
        flipped += mirrored and not plain
    assert 5 < flipped < 35


def test_flip_only() -> None:
    x = images(n=1000, c=1, h=4, w=5)
    out = random_crop_flip(x, 0, True, gen(11))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert torch.all(same ^ mirrored)  # exactly one of the two (the images are not symmetric)
    assert 0.45 < mirrored.float().mean() < 0.55


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_crop_flip(torch.zeros(3, 4, 4), 1, True)
    with pytest.raises(ValueError, match="padding"):
        random_crop_flip(torch.zeros(1, 1, 4, 4), -1, True)


@pytest.mark.gpu
def test_cpu_generator_gives_same_result_on_gpu() -> None:
    x = images(n=64)
    cpu = random_crop_flip(x, 4, True, gen(9))
    gpu = random_crop_flip(x.cuda(), 4, True, gen(9))
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
    cuda_gen = torch.Generator(device="cuda").manual_seed(9)
    assert random_crop_flip(x.cuda(), 4, True, cuda_gen).shape == x.shape


# ---------------------------------------------------------------------------------- normalize
def test_normalize_uint8() -> None:
    x = images(c=3)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    out = normalize(x, mean, std)
    ref = (x.double() / 255 - torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(
        std, dtype=torch.float64
    ).view(1, 3, 1, 1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref.float(), rtol=1e-6, atol=1e-6)
    bf16 = normalize(x, mean, std, dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and torch.equal(bf16, out.to(torch.bfloat16))
    torch.testing.assert_close(normalize(x, mean, std, dtype=torch.float64), ref, rtol=1e-14, atol=1e-14)


def test_normalize_float_in_unit_range() -> None:
    x = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3)
    assert normalize(x, (0.5,), (0.25,)).flatten().tolist() == [-2.0, 0.0, 2.0]


def test_normalize_channel_mismatch() -> None:
    with pytest.raises(ValueError, match="3 channels"):
        normalize(images(c=3), (0.5,), (0.2,))


# ------------------------------------------------------------------------------ iterate_batches
def test_iterate_batches_covers_each_example_once() -> None:
    x = torch.arange(10).view(10, 1) * 10
    y = torch.arange(10)
    batches = list(iterate_batches(x, y, 4, shuffle=True, generator=gen(0)))
    assert [len(b) for b, _ in batches] == [4, 4, 2]
    seen = torch.cat([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    for xb, yb in batches:
        assert torch.equal(xb[:, 0], yb * 10)  # x and y stay paired


def test_iterate_batches_epochs_and_determinism() -> None:
    x, y = torch.arange(50).view(50, 1), torch.arange(50)
    g = gen(1)
    first = torch.cat([b for _, b in iterate_batches(x, y, 8, generator=g)])
    second = torch.cat([b for _, b in iterate_batches(x, y, 8, generator=g)])
    assert not torch.equal(first, second)  # a new permutation per epoch
    assert torch.equal(first, torch.cat([b for _, b in iterate_batches(x, y, 8, generator=gen(1))]))


def test_iterate_batches_no_shuffle_and_drop_last() -> None:
    x, y = torch.arange(10).view(10, 1), torch.arange(10)
    batches = list(iterate_batches(x, y, 4, shuffle=False, drop_last=True))
    assert [b.tolist() for _, b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert batches[0][0].data_ptr() == x.data_ptr()  # contiguous slices are views
    assert len(list(iterate_batches(x, y, 20, drop_last=True))) == 0
    assert len(list(iterate_batches(x, y, 20))) == 1


def test_iterate_batches_errors() -> None:
    with pytest.raises(ValueError, match="y has 3"):
        next(iterate_batches(torch.zeros(4, 1), torch.zeros(3), 2))
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(torch.zeros(4, 1), torch.zeros(4), 0))
