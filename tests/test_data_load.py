"""The dataset registry and entry point: search order, downloads (through file:// mirrors, never the
network), the "how to get it" errors, digits, LoadedData helpers, and the real Fashion-MNIST."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import rectlab.data as data
from rectlab.data import DataError, DatasetNotFoundError, LoadedData
from rectlab.data import download as dl
from rectlab.data.cifar import CIFAR10
from rectlab.data.idx import FASHION_MNIST, IDX_FILES, write_idx
from rectlab.data.ondisk import Resource
from rectlab.registry import UnknownNameError

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $RECTLAB_DATA and a fresh cache; returns rectlab's cache folder."""
    monkeypatch.delenv("RECTLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "rectlab"


def make_idx(folder: Path, label: int, n_train: int = 20, n_test: int = 10, gz: bool = True) -> Path:
    """Four IDX files whose labels are all ``label``, so a test can tell copies apart."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(label)
    for name, n in zip(IDX_FILES, (n_train, n_train, n_test, n_test)):
        array = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if "images" in name else np.full(n, label, np.uint8)
        write_idx(folder / (name + (".gz" if gz else "")), array)
    return folder


def no_download(*args: object, **kwargs: object) -> None:
    raise AssertionError("a download was attempted")


# small Fashion-MNIST with no system folder, so tests see only what they create
SMALL = dataclasses.replace(FASHION_MNIST, sizes=(20, 10), system_dirs=())


# ------------------------------------------------------------------------------------ registry
def test_names_and_default() -> None:
    assert data.names() == [
        "cifar10",
        "cifar10-val",
        "cifar100",
        "digits",
        "digits-val",
        "fashion-mnist",
        "fashion-mnist-val",
        "imagefolder",
        "mnist",
        "svhn",
    ]
    assert data.DEFAULT_DATASET in data.names()
    assert "fashion_mnist" in data.DATASETS  # registry names are normalised


def test_validation_split_holds_out_the_last_training_examples() -> None:
    full, val = data.load("digits"), data.load("digits-val")
    n = full.num_train - 300
    assert (val.num_train, val.num_test) == (n, 300) and val.name == "digits-val"
    assert torch.equal(val.train_x, full.train_x[:n]) and torch.equal(val.test_x, full.train_x[n:])
    assert torch.equal(val.test_y, full.train_y[n:]) and val.mean == full.mean
    assert data.find("digits-val") == data.find("digits")


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean .fashion-mnist.*cifar10, cifar10-val, cifar100, digits"):
        data.load("fashion-mnst")


def test_options_are_checked() -> None:
    with pytest.raises(TypeError, match="takes no options, got image_size"):
        data.load("fashion-mnist", image_size=32)


def test_import_is_light() -> None:
    """Importing rectlab.data must not import the heavy or optional libraries (they load lazily)."""
    code = (
        "import sys; import rectlab; before = set(sys.modules); import rectlab.data; "
        "print(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] in ('sklearn', 'PIL', 'torchvision') or m.startswith('scipy.io')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -------------------------------------------------------------------------------- search order
def test_search_order_data_dir_then_env_then_cache_then_system(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = dataclasses.replace(SMALL, system_dirs=(str(make_idx(tmp_path / "system", label=4)),))
    assert spec.load(download=False).train_y[0] == 4
    make_idx(cache / "fashion-mnist", label=3)
    assert spec.load(download=False).train_y[0] == 3
    env = make_idx(tmp_path / "env", label=2)
    monkeypatch.setenv("RECTLAB_DATA", os.pathsep.join([str(tmp_path / "nothing-here"), str(env)]))
    assert spec.load(download=False).train_y[0] == 2
    given = make_idx(tmp_path / "given", label=1)
    d = spec.load(given, download=False)
    assert d.train_y[0] == 1 and d.source == str(given)
    assert spec.find(given) == given and spec.find() == env


@pytest.mark.parametrize("layout", ["", "fashion-mnist", "FashionMNIST/raw", "fashion-mnist/FashionMNIST/raw"])
def test_layouts_found_under_a_root(tmp_path: Path, layout: str) -> None:
    folder = make_idx(tmp_path / "root" / layout, label=5, gz=False)
    assert SMALL.find(tmp_path / "root") == folder
    assert SMALL.load(tmp_path / "root", download=False).train_y[0] == 5


def test_data_dir_accepts_str_and_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    make_idx(tmp_path / "mydata", label=6)
    assert SMALL.load("~/mydata", download=False).train_y[0] == 6


def test_real_registry_finds_the_debian_copy() -> None:
    if not DEBIAN_FMNIST.is_dir():
        pytest.skip(f"{DEBIAN_FMNIST} not installed (apt-get install dataset-fashion-mnist)")
    assert data.find("fashion-mnist") == DEBIAN_FMNIST


# -------------------------------------------------------------------------- not found / errors
def test_download_false_gives_how_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "fetch", no_download)
    spec = dataclasses.replace(FASHION_MNIST, system_dirs=(str(tmp_path / "not-installed"),))
    with pytest.raises(DatasetNotFoundError) as err:
        spec.load(tmp_path / "mine", download=False)
    message = str(err.value)
    for needed in [
        "Fashion-MNIST (fashion-mnist) was not found",
        f"{tmp_path / 'mine'} (data_dir)",
        "(user cache)",
        f"{tmp_path / 'not-installed'} (system)",
        "download=False",
        "sudo apt-get install dataset-fashion-mnist",
        "--data-dir FOLDER",
        "RECTLAB_DATA=FOLDER",
        *IDX_FILES,
    ]:
        assert needed in message, needed
    assert isinstance(err.value, DataError)


def test_incomplete_copy_is_reported(tmp_path: Path) -> None:
    folder = make_idx(tmp_path, label=0)
    (folder / (IDX_FILES[3] + ".gz")).unlink()
    with pytest.raises(DatasetNotFoundError, match="lacks t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"):
        SMALL.load(tmp_path, download=False)


def test_failed_download_gives_how_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(urls: object, dest: Path, md5: object = None, timeout: float = 0) -> Path:
        raise dl.DownloadError(f"could not download {dest.name}: <urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(dl, "fetch", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        SMALL.load(download=True)
    message = str(err.value)
    assert "Downloading failed: could not download train-images-idx3-ubyte.gz" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert err.value.__suppress_context__  # the user sees our message, not a urllib traceback


def test_unreachable_mirror_fails_fast_with_how_to(tmp_path: Path, cache: Path) -> None:
    spec = dataclasses.replace(
        SMALL, resources=(Resource("train-images-idx3-ubyte.gz", None, ((tmp_path / "missing.gz").as_uri(),)),)
    )
    with pytest.raises(DatasetNotFoundError, match="Downloading failed: could not download train-images"):
        spec.load()
    assert not any(cache.rglob("*.part"))  # no half files left behind


# ---------------------------------------------------------------------------------- downloads
def _mirror(files: dict[str, Path]) -> tuple[Resource, ...]:
    return tuple(
        Resource(name, hashlib.md5(path.read_bytes()).hexdigest(), (path.parent.as_uri() + "/nope", path.as_uri()))
        for name, path in files.items()
    )


def test_download_into_cache_then_found(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = make_idx(tmp_path / "mirror", label=7)
    spec = dataclasses.replace(SMALL, resources=_mirror({f + ".gz": mirror / (f + ".gz") for f in IDX_FILES}))
    d = spec.load()  # the first URL of each file 404s; the second works
    assert d.source == str(cache / "fashion-mnist") and d.train_y[0] == 7
    assert sorted(p.name for p in (cache / "fashion-mnist").iterdir()) == sorted(f + ".gz" for f in IDX_FILES)
    monkeypatch.setattr(dl, "fetch", no_download)
    assert spec.load().source == str(cache / "fashion-mnist")  # second time: found, not downloaded


def test_download_goes_to_data_dir_when_given(tmp_path: Path) -> None:
    mirror = make_idx(tmp_path / "mirror", label=7)
    spec = dataclasses.replace(SMALL, resources=_mirror({f + ".gz": mirror / (f + ".gz") for f in IDX_FILES}))
    assert spec.load(tmp_path / "mine").source == str(tmp_path / "mine" / "fashion-mnist")


def test_download_checksum_mismatch(tmp_path: Path, cache: Path) -> None:
    mirror = make_idx(tmp_path / "mirror", label=7)
    (resource,) = _mirror({"train-images-idx3-ubyte.gz": mirror / (IDX_FILES[0] + ".gz")})
    spec = dataclasses.replace(SMALL, resources=(dataclasses.replace(resource, md5="0" * 32),))
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch"):
        spec.load()
    assert not (cache / "fashion-mnist" / "train-images-idx3-ubyte.gz").exists()


def _cifar_tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def test_download_and_extract_cifar(tmp_path: Path, cache: Path) -> None:
    import pickle

    rng = np.random.default_rng(0)
    members = {
        f"cifar-10-batches-py/{name}": pickle.dumps(
            {"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), "labels": [1, 2]}
        )
        for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    }
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({"label_names": [f"n{i}" for i in range(10)]})
    archive = _cifar_tarball(tmp_path / "cifar-10-python.tar.gz", members)
    resources = tuple(dataclasses.replace(r, extract=True) for r in _mirror({archive.name: archive}))
    spec = dataclasses.replace(CIFAR10, sizes=(10, 2), resources=resources)
    d = spec.load()
    assert d.source == str(cache / "cifar10" / "cifar-10-batches-py")
    assert d.train_x.shape == (10, 3, 32, 32) and d.classes[9] == "n9"
    assert not (cache / "cifar10" / archive.name).exists()  # the archive is removed once unpacked


def test_extract_refuses_unsafe_members(tmp_path: Path) -> None:
    archive = _cifar_tarball(tmp_path / "evil.tar.gz", {"../escaped": b"x"})
    with pytest.raises(dl.DownloadError):
        dl.extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


def test_extract_broken_archive(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b not really")
    with pytest.raises(dl.DownloadError, match="not a readable tar archive"):
        dl.extract_tar(archive, tmp_path / "out")


# -------------------------------------------------------------------------------------- digits
def test_digits() -> None:
    d = data.load("digits")
    assert d.source == "scikit-learn" and d.in_memory
    assert d.train_x.shape == (1437, 1, 8, 8) and d.test_x.shape == (360, 1, 8, 8)
    assert d.train_x.dtype == torch.uint8 and int(d.train_x.max()) == 255 and int(d.train_x.min()) == 0
    assert set(d.train_y.tolist()) == set(range(10)) and d.test_y.dtype == torch.int64
    assert d.test_y.bincount().tolist() == [36, 37, 35, 37, 36, 36, 36, 36, 35, 36]  # stratified
    assert (d.flip, d.crop_padding, d.image_size) == (False, 0, (8, 8))
    again = data.load("digits")
    assert torch.equal(d.train_x, again.train_x) and torch.equal(d.test_y, again.test_y)
    assert d.num_train + d.num_test == 1797  # the split's disjointness is checked in test_stratified_split_*
    assert data.find("digits") is not None and data.find("digits").name == "digits.csv.gz"


def test_stratified_split_exact_size() -> None:
    from rectlab.data.digits import stratified_split

    labels = np.repeat(np.arange(3), [10, 7, 3])
    train, test = stratified_split(labels, test_size=5, seed=0)
    assert len(test) == 5 and len(train) == 15 and set(train).isdisjoint(test)
    # exact shares 2.5, 1.75, 0.75: floors 2, 1, 0, and the two leftovers go to the largest remainders
    assert np.bincount(labels[test]).tolist() == [2, 2, 1]
    assert np.array_equal(test, stratified_split(labels, test_size=5, seed=0)[1])


# ---------------------------------------------------------------------------------- LoadedData
def test_loaded_data_helpers(tmp_path: Path) -> None:
    d = SMALL.load(make_idx(tmp_path, label=8), download=False)
    assert d.describe() == f"fashion-mnist: 20 train / 10 test, 1x28x28 uint8 in memory, 10 classes, from {tmp_path}"
    assert "tensor" not in repr(d)  # the repr stays one readable line
    small = d.limit(train=5, test=3)
    assert (small.num_train, small.num_test) == (5, 3) and torch.equal(small.train_x, d.train_x[:5])
    assert d.to("cpu").train_x.device.type == "cpu"
    with pytest.raises(ValueError, match="positive"):
        d.limit(train=0)
    with pytest.raises(ValueError, match="not a mix"):
        dataclasses.replace(d, train_set=torch.utils.data.TensorDataset(d.train_x))


# ---------------------------------------------------------------------------- real Fashion-MNIST
@pytest.mark.skipif(
    not DEBIAN_FMNIST.is_dir(), reason=f"{DEBIAN_FMNIST} absent (apt-get install dataset-fashion-mnist)"
)
def test_real_fashion_mnist() -> None:
    d = data.load("fashion-mnist", download=False)
    assert isinstance(d, LoadedData) and d.source == str(DEBIAN_FMNIST)
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    assert d.train_y.bincount().tolist() == [6000] * 10 and d.test_y.bincount().tolist() == [1000] * 10
    assert d.mean[0] == pytest.approx(0.2860, abs=1e-4) and d.std[0] == pytest.approx(0.3530, abs=1e-4)
    assert d.classes[9] == "Ankle boot"
