"""On-disk dataset formats: small fixture files in the real formats (IDX, CIFAR pickles, SVHN .mat,
image folders) are built in tmp_path and loaded; truncated or corrupt files must raise DataError
naming the file, never return a partial dataset."""

from __future__ import annotations

import dataclasses
import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import rectlab.data as data
from rectlab.data import DataError, DatasetNotFoundError
from rectlab.data.cifar import CIFAR10, CIFAR100, read_batch
from rectlab.data.idx import FASHION_MNIST, IDX_FILES, read_idx, write_idx
from rectlab.data.svhn import SVHN, read_mat


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No $RECTLAB_DATA and an empty cache, so only the fixtures a test makes can be found."""
    monkeypatch.delenv("RECTLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# --------------------------------------------------------------------------------------- IDX
def make_idx(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = True, seed: int = 0) -> dict:
    """Write the four MNIST-style IDX files; return the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        IDX_FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        IDX_FILES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        IDX_FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        IDX_FILES[3]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), array)
    return arrays


SMALL_FMNIST = dataclasses.replace(FASHION_MNIST, sizes=(20, 10), system_dirs=())


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, dtype: type, suffix: str) -> None:
    array = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    path = write_idx(tmp_path / f"a.idx{suffix}", array)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if suffix else b"\x00\x00")
    back = read_idx(path)
    assert back.shape == array.shape and np.array_equal(back, array)


def test_idx_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = write_idx(tmp_path / "labels-without-suffix", array, compress=True)
    assert np.array_equal(read_idx(path), array)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_payload_names_file(tmp_path: Path, gz: bool) -> None:
    payload = write_idx(tmp_path / "full", np.zeros((10, 28, 28), np.uint8)).read_bytes()[:-100]
    path = tmp_path / ("cut.gz" if gz else "cut")
    path.write_bytes(gzip.compress(payload) if gz else payload)
    with pytest.raises(DataError, match="truncated") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_idx_payload_longer_than_header(tmp_path: Path) -> None:
    path = tmp_path / "long"
    path.write_bytes(write_idx(tmp_path / "ok", np.zeros(5, np.uint8)).read_bytes() + b"\x00")
    with pytest.raises(DataError, match="longer than its header"):
        read_idx(path)


@pytest.mark.parametrize("content", [b"", b"\x00\x00", b"\x08\x03\x00\x00" + bytes(20), b"\x00\x00\x42\x01" + bytes(8)])
def test_idx_bad_magic(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(DataError, match="not an IDX file") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_idx_short_header(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00\x08\x03" + bytes(5))  # 3 dims need 12 bytes
    with pytest.raises(DataError, match="header cut short"):
        read_idx(path)


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_idx_broken_gzip_names_file(tmp_path: Path, damage: str) -> None:
    good = write_idx(tmp_path / "x.gz", np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8))
    raw = good.read_bytes()
    bad = raw[: len(raw) // 2] if damage == "cut" else raw[:10] + b"\xff" * (len(raw) - 10)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(bad)
    with pytest.raises(DataError, match="broken gzip") as err:
        read_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset_loads(tmp_path: Path, gz: bool) -> None:
    arrays = make_idx(tmp_path / "fm", gz=gz)
    d = SMALL_FMNIST.load(tmp_path / "fm", download=False)
    assert d.in_memory and d.source == str(tmp_path / "fm")
    assert d.train_x.shape == (20, 1, 28, 28) and d.test_x.shape == (10, 1, 28, 28)
    assert d.train_x.dtype == torch.uint8 and d.train_y.dtype == torch.int64
    assert torch.equal(d.train_x[:, 0], torch.from_numpy(arrays[IDX_FILES[0]]))
    assert torch.equal(d.test_y, torch.from_numpy(arrays[IDX_FILES[3]].astype(np.int64)))
    assert (d.num_classes, d.in_channels, d.image_size, d.flip, d.crop_padding) == (10, 1, (28, 28), True, 2)
    assert d.classes[0] == "T-shirt/top" and len(d.classes) == 10
    pixels = arrays[IDX_FILES[0]].astype(np.float64) / 255
    assert d.mean[0] == pytest.approx(pixels.mean(), abs=1e-12)
    assert d.std[0] == pytest.approx(pixels.std(), abs=1e-12)


def test_idx_published_sizes_are_enforced(tmp_path: Path) -> None:
    make_idx(tmp_path)
    with pytest.raises(DataError, match="holds 20 training and 10 test images, but fashion-mnist has 60000 and 10000"):
        data.load("fashion-mnist", data_dir=tmp_path, download=False)


def test_idx_inconsistent_files(tmp_path: Path) -> None:
    make_idx(tmp_path)
    write_idx(tmp_path / (IDX_FILES[1] + ".gz"), np.zeros(19, np.uint8))  # one label short
    with pytest.raises(DataError, match="20 images but 19 labels"):
        SMALL_FMNIST.load(tmp_path, download=False)
    write_idx(tmp_path / (IDX_FILES[1] + ".gz"), np.full(20, 10, np.uint8))  # label 10 of 10 classes
    with pytest.raises(DataError, match=r"range over \[10, 10\]"):
        SMALL_FMNIST.load(tmp_path, download=False)
    write_idx(tmp_path / (IDX_FILES[0] + ".gz"), np.zeros((20, 8, 8), np.uint8))  # wrong image size
    with pytest.raises(DataError, match=r"expected uint8 images of shape \(N, 28, 28\)") as err:
        SMALL_FMNIST.load(tmp_path, download=False)
    assert IDX_FILES[0] in str(err.value)


def test_idx_corrupt_file_stops_the_load(tmp_path: Path) -> None:
    make_idx(tmp_path)
    path = tmp_path / (IDX_FILES[2] + ".gz")
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError) as err:
        SMALL_FMNIST.load(tmp_path, download=False)
    assert str(path) in str(err.value)


# ------------------------------------------------------------------------------------- CIFAR
def _pickle(path: Path, obj: object, protocol: int = 2) -> None:
    """Protocol 2 is what Python 2 wrote the real files with; others are what a user's Python 3 writes."""
    raw = pickle.dumps(obj, protocol=protocol)
    if protocol == 2:  # the real files reference numpy.core (numpy < 2), which numpy 2 renamed numpy._core
        raw = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
        assert b"numpy.core.multiarray" in raw or b"numpy" not in raw
    path.write_bytes(raw)


def make_cifar10(root: Path, per_batch: int = 4, n_test: int = 5, byte_keys: bool = False) -> dict:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    key = (lambda s: s.encode()) if byte_keys else (lambda s: s)
    batches = {}
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, n))}
        batches[name] = batch
        _pickle(folder / name, {key(k): v for k, v in batch.items()})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _pickle(folder / "batches.meta", {key("label_names"): [key(n) for n in names]})
    return batches


SMALL_CIFAR10 = dataclasses.replace(CIFAR10, sizes=(20, 5))


@pytest.mark.parametrize("byte_keys", [False, True])
def test_cifar10_loads(tmp_path: Path, byte_keys: bool) -> None:
    batches = make_cifar10(tmp_path, byte_keys=byte_keys)
    d = SMALL_CIFAR10.load(tmp_path, download=False)
    assert d.source == str(tmp_path / "cifar-10-batches-py")
    assert d.train_x.shape == (20, 3, 32, 32) and d.test_x.shape == (5, 3, 32, 32)
    assert d.classes[:2] == ("airplane", "automobile") and d.flip and d.crop_padding == 4
    # batch order is kept, and each row is channel-major: row[c * 1024 + h * 32 + w]
    row = batches["data_batch_2"]["data"][1]
    image = d.train_x[4 + 1]
    for c, h, w in [(0, 0, 0), (1, 5, 7), (2, 31, 30)]:
        assert image[c, h, w] == row[c * 1024 + h * 32 + w]
    assert d.test_y.tolist() == [int(v) for v in batches["test_batch"]["labels"]]


def test_cifar100_loads(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for name, n in [("train", 6), ("test", 3)]:
        data_ = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch = {"data": data_, "fine_labels": [99 - i for i in range(n)], "coarse_labels": [0] * n}
        _pickle(folder / name, batch, protocol=pickle.HIGHEST_PROTOCOL)
    _pickle(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]}, protocol=pickle.HIGHEST_PROTOCOL)
    d = dataclasses.replace(CIFAR100, sizes=(6, 3)).load(tmp_path, download=False)
    assert d.num_classes == 100 and d.classes[99] == "c99"
    assert d.train_y.tolist() == [99, 98, 97, 96, 95, 94]


def test_cifar_truncated_batch_names_file(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="cannot be unpickled") as err:
        SMALL_CIFAR10.load(tmp_path, download=False)
    assert str(path) in str(err.value)


class _Payload:
    """A pickle that would create a file when unpickled by a trusting loader."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.target,))


def test_cifar_pickle_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "was-run"
    path = tmp_path / "data_batch_1"
    _pickle(path, {"data": _Payload(marker), "labels": []})
    with pytest.raises(DataError, match="refusing to load .* CIFAR batches hold only numpy arrays") as err:
        read_batch(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_cifar_wrong_content(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    _pickle(path, {"data": np.zeros((5, 1024), np.uint8), "labels": [0] * 5})
    with pytest.raises(DataError, match=r"\(N, 3072\)"):
        SMALL_CIFAR10.load(tmp_path, download=False)
    _pickle(path, [1, 2, 3])
    with pytest.raises(DataError, match="expected a pickled dict"):
        SMALL_CIFAR10.load(tmp_path, download=False)


# -------------------------------------------------------------------------------------- SVHN
def make_svhn(folder: Path, n_train: int = 7, n_test: int = 3) -> dict:
    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    out = {}
    for name, n in [("train_32x32.mat", n_train), ("test_32x32.mat", n_test)]:
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)  # 1..10, 10 = digit 0
        scipy.io.savemat(folder / name, {"X": x, "y": y})
        out[name] = (x, y)
    return out


def test_svhn_loads(tmp_path: Path) -> None:
    arrays = make_svhn(tmp_path)
    d = dataclasses.replace(SVHN, sizes=(7, 3)).load(tmp_path, download=False)
    x, y = arrays["train_32x32.mat"]
    assert d.train_x.shape == (7, 3, 32, 32) and d.train_x.is_contiguous()
    assert d.train_x[5, 2, 3, 4] == x[3, 4, 2, 5]  # (H, W, C, N) -> (N, C, H, W)
    assert torch.equal(d.train_x, torch.from_numpy(x).permute(3, 2, 0, 1))
    assert d.train_y.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert d.test_y.tolist() == [1, 2, 3]
    assert not d.flip and d.crop_padding == 4


def test_svhn_label_ten_is_zero(tmp_path: Path) -> None:
    make_svhn(tmp_path, n_train=10)
    _, y = read_mat(tmp_path / "train_32x32.mat")
    assert y.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_svhn_corrupt_file_names_file(tmp_path: Path, damage: str) -> None:
    make_svhn(tmp_path)
    path = tmp_path / "test_32x32.mat"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage == "cut" else b"not a mat file" * 20)
    with pytest.raises(DataError, match="not a readable MATLAB file") as err:
        dataclasses.replace(SVHN, sizes=(7, 3)).load(tmp_path, download=False)
    assert str(path) in str(err.value)


def test_svhn_bad_labels(tmp_path: Path) -> None:
    import scipy.io

    scipy.io.savemat(tmp_path / "x.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[0], [3]])})
    with pytest.raises(DataError, match="labels must be integers 1..10"):
        read_mat(tmp_path / "x.mat")


# ------------------------------------------------------------------------------ image folders
def make_folder(root: Path, classes: dict[str, dict[str, int]]) -> None:
    """``classes`` maps split -> class -> image count; images are solid colours, one grayscale."""
    from PIL import Image

    for split, counts in classes.items():
        for k, (cls, n) in enumerate(counts.items()):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                mode, colour = ("L", 100) if i == 1 else ("RGB", (40 * k, 100, 200))
                Image.new(mode, (40, 30), colour).save(root / split / cls / f"{i}.png")


def test_imagefolder_loads(tmp_path: Path) -> None:
    make_folder(tmp_path, {"train": {"cat": 3, "dog": 3}, "val": {"cat": 2, "dog": 2}})
    d = data.load("imagefolder", data_dir=tmp_path, image_size=16)
    assert not d.in_memory and d.train_x is None
    assert (d.num_train, d.num_test, d.num_classes, d.classes) == (6, 4, 2, ("cat", "dog"))
    assert d.image_size == (16, 16) and d.in_channels == 3 and d.flip
    x, y = d.train_set[4]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y == 1
    # val is deterministic: a solid colour stays solid through resize + center crop, then is normalised
    x, y = d.test_set[2]  # dog/0.png, colour (40, 100, 200)
    mean, std = torch.tensor(d.mean).view(3, 1, 1), torch.tensor(d.std).view(3, 1, 1)
    expected = (torch.tensor([40.0, 100.0, 200.0]).view(3, 1, 1) / 255 - mean) / std
    assert torch.allclose(x, expected.expand(3, 16, 16), atol=1e-5)
    gray, _ = d.test_set[1]  # a grayscale PNG becomes 3 channels
    assert gray.shape == (3, 16, 16)
    assert "6 train / 4 test, 3x16x16 images read from disk, 2 classes" in d.describe()


def test_imagefolder_limit_spreads_over_classes(tmp_path: Path) -> None:
    make_folder(tmp_path, {"train": {"a": 3, "b": 3, "c": 3}, "val": {"a": 1, "b": 1, "c": 1}})
    d = data.load("imagefolder", data_dir=tmp_path, image_size=8).limit(train=3)
    assert d.num_train == 3 and d.num_test == 3
    assert sorted(d.train_set[i][1] for i in range(3)) == [0, 1, 2]


def test_imagefolder_class_mismatch(tmp_path: Path) -> None:
    make_folder(tmp_path, {"train": {"cat": 1, "dog": 1}, "val": {"cat": 1, "emu": 1}})
    with pytest.raises(DataError, match=r"same class folders.*only in train/: \['dog'\].*only in val/: \['emu'\]"):
        data.load("imagefolder", data_dir=tmp_path)


def test_imagefolder_empty_split(tmp_path: Path) -> None:
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError) as err:
        data.load("imagefolder", data_dir=tmp_path)
    assert str(tmp_path / "train") in str(err.value)


def test_imagefolder_not_found(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="never downloaded") as err:
        data.load("imagefolder", data_dir=tmp_path)
    assert str(tmp_path) in str(err.value) and "--data-dir" in str(err.value)
    assert data.find("imagefolder", tmp_path) is None
