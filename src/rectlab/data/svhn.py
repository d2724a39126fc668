"""SVHN (cropped digits) from its MATLAB files ``train_32x32.mat`` and ``test_32x32.mat``.

Each file holds ``X``, uint8 of shape (32, 32, 3, N), and ``y``, shape (N, 1), with labels 1..10
where 10 stands for the digit 0. We map 10 -> 0 so that label = digit, as torchvision does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .core import DataError, LoadedData
from .ondisk import OnDiskSpec, Resource

__all__ = ["SvhnSpec", "read_mat"]


def read_mat(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one SVHN .mat file into uint8 images (N, 3, 32, 32) and int64 labels 0..9.

    Raises:
        DataError: naming the file, if it is not a readable .mat file or its arrays are malformed.
    """
    import scipy.io  # lazy: scipy.io is slow to import and only SVHN needs it

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
    except Exception as e:  # scipy raises ValueError, MatReadError, OSError, ... for bad files
        raise DataError(
            f"{path}: not a readable MATLAB file ({type(e).__name__}: {e}); it is truncated or corrupt"
        ) from e
    if "X" not in mat or "y" not in mat:
        raise DataError(
            f"{path}: expected variables 'X' and 'y', found {sorted(k for k in mat if not k.startswith('__'))}"
        )
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: 'X' should be uint8 of shape (32, 32, 3, N), got {x.dtype} {x.shape}")
    if len(y) != x.shape[3]:
        raise DataError(f"{path}: {x.shape[3]} images but {len(y)} labels")
    if len(y) and (y.min() < 1 or y.max() > 10 or not np.all(y == np.round(y))):
        raise DataError(f"{path}: labels must be integers 1..10 (10 = digit 0), found [{y.min()}, {y.max()}]")
    labels = y.astype(np.int64) % 10  # 10 -> 0
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))  # (H, W, C, N) -> (N, C, H, W)
    return torch.from_numpy(images), torch.from_numpy(labels)


@dataclass(frozen=True)
class SvhnSpec(OnDiskSpec):
    """SVHN's train and test .mat files (the "extra" split is not used)."""

    def read(self, folder: Path) -> LoadedData:
        return self.assemble(folder, train=read_mat(self.file(folder, 0)), test=read_mat(self.file(folder, 1)))


_URL = "http://ufldl.stanford.edu/housenumbers/"

SVHN = SvhnSpec(
    name="svhn",
    title="SVHN",
    num_classes=10,
    in_channels=3,
    image_size=(32, 32),
    flip=False,  # mirrored digits are not digits
    crop_padding=4,
    classes=tuple(str(d) for d in range(10)),
    required=(("train_32x32.mat",), ("test_32x32.mat",)),
    resources=(
        Resource("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373", (_URL + "train_32x32.mat",)),
        Resource("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3", (_URL + "test_32x32.mat",)),
    ),
    sizes=(73257, 26032),
    files_hint="put train_32x32.mat and test_32x32.mat in a FOLDER",
)
