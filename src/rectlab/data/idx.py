"""The IDX format of MNIST and Fashion-MNIST: reading (gzipped or raw) with full checks, and writing.

An IDX file is a 4-byte magic ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32 sizes, then
the values in C order. The header fixes the payload length, so a truncated file is always detected.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputTypeError
from .core import DataError, LoadedData
from .ondisk import OnDiskSpec, Resource

__all__ = ["IdxSpec", "read_idx", "write_idx"]

# IDX type byte -> numpy dtype (multi-byte values are big-endian)
_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}  # fmt: skip
_TYPE_CODES = {dtype: code for code, dtype in _DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed if it is gzip (sniffed from the bytes, not trusted from the name)."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; EOFError = cut short
        raise DataError(f"{path}: broken gzip data ({e}); the file is truncated or corrupt, download it again") from e


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or raw) into an array of the shape its header gives.

    Raises:
        DataError: naming the file, if the magic is wrong or the payload is shorter or longer than
            the header says.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(
            f"{path}: not an IDX file (starts with {raw[:4].hex() or 'nothing'}, expected 0000 + type + ndim)"
        )
    dtype, ndim = _DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header cut short ({len(raw)} bytes, the header alone needs {header})")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        problem = "truncated" if got < expected else "longer than its header says (corrupt)"
        raise DataError(
            f"{path}: header says shape {shape} = {expected} bytes of data but the file holds {got}: "
            f"it is {problem}; download it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).copy()


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzipped when ``compress`` is True or, if None, when the name ends in .gz."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in _TYPE_CODES:
        raise InputTypeError(f"IDX cannot store {array.dtype}; use one of uint8, int8, int16, int32, float32, float64")
    payload = struct.pack(f">BBBB{array.ndim}I", 0, 0, _TYPE_CODES[dtype], array.ndim, *array.shape)
    payload += array.astype(dtype, copy=False).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return path


def _images(path: Path, size: tuple[int, int]) -> torch.Tensor:
    array = read_idx(path)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[1:] != size:
        raise DataError(
            f"{path}: expected uint8 images of shape (N, {size[0]}, {size[1]}), got {array.dtype} {array.shape}"
        )
    return torch.from_numpy(array).unsqueeze(1)  # (N, 1, H, W)


def _labels(path: Path) -> torch.Tensor:
    array = read_idx(path)
    if array.dtype != np.uint8 or array.ndim != 1:
        raise DataError(f"{path}: expected a 1-D uint8 label file, got {array.dtype} {array.shape}")
    return torch.from_numpy(array.astype(np.int64))


@dataclass(frozen=True)
class IdxSpec(OnDiskSpec):
    """MNIST-style data: four IDX files (train/t10k images/labels), gzipped or raw."""

    def read(self, folder: Path) -> LoadedData:
        train_x, train_y, test_x, test_y = (self.file(folder, i) for i in range(4))
        return self.assemble(
            folder,
            train=(_images(train_x, self.image_size), _labels(train_y)),
            test=(_images(test_x, self.image_size), _labels(test_y)),
        )


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_spec(
    *,
    name: str,
    title: str,
    classes: tuple[str, ...],
    flip: bool,
    md5s: tuple[str, ...],
    mirrors: tuple[str, ...],
    **kw,
) -> IdxSpec:
    """An `IdxSpec` with the standard four file names (raw preferred over .gz when both exist)."""
    return IdxSpec(
        name=name,
        title=title,
        num_classes=len(classes),
        in_channels=1,
        image_size=(28, 28),
        flip=flip,
        crop_padding=2,
        classes=classes,
        required=tuple((f, f"{f}.gz") for f in IDX_FILES),
        resources=tuple(
            Resource(f"{f}.gz", md5, tuple(f"{m}{f}.gz" for m in mirrors)) for f, md5 in zip(IDX_FILES, md5s)
        ),
        sizes=(60000, 10000),
        files_hint=f"put the four files {', '.join(IDX_FILES)} (each may end in .gz) in a FOLDER",
        **kw,
    )


FASHION_MNIST = idx_spec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    flip=True,  # garments are left/right symmetric; flips are standard augmentation for Fashion-MNIST
    md5s=(
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    aliases=("FashionMNIST/raw",),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    install_hint="on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
    "(installs /usr/share/datasets/fashion-mnist)",
)

MNIST = idx_spec(
    name="mnist",
    title="MNIST",
    classes=tuple(str(d) for d in range(10)),
    flip=False,  # a mirrored digit is not the same digit
    md5s=(
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    aliases=("MNIST/raw",),
)
