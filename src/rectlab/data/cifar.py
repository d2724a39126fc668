"""CIFAR-10 and CIFAR-100 in their "python version" format: pickled dicts of uint8 rows.

Each batch file holds ``data`` (N x 3072 uint8, channel-major 3x32x32) and ``labels`` (CIFAR-10)
or ``fine_labels`` (CIFAR-100). The files are pickles written by Python 2; they are read with an
unpickler that can build numpy arrays and nothing else, so a tampered file cannot run code.
"""

from __future__ import annotations

import codecs
import importlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .core import DataError, LoadedData
from .ondisk import OnDiskSpec, Resource

__all__ = ["CifarSpec", "read_batch"]

# What a numpy array pickle (Python 2 or 3, any protocol) may reference. ``_codecs.encode`` is
# how protocol 2 stores Python 3 bytes; it only turns a str into bytes.
_ALLOWED = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}


class _ArrayUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # latin1: how numpy arrays pickled by Python 2 load
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return codecs.encode
        if not (module == "numpy" or module.startswith("numpy.")) or name not in _ALLOWED:
            raise DataError(
                f"{self.path}: refusing to load {module}.{name} from it: CIFAR batches hold only numpy arrays, "
                "so this file is not one (or was tampered with)"
            )
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core") :]  # numpy 2 renamed the module old pickles name
        return getattr(importlib.import_module(module), name)


def read_batch(path: str | Path) -> dict[str, Any]:
    """Unpickle one CIFAR batch file into a dict with str keys.

    Raises:
        DataError: naming the file, if it cannot be unpickled, references anything but numpy
            arrays, or is not a dict.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, path).load()
    except DataError:
        raise
    except Exception as e:  # truncated or garbled pickles fail in many ways; all mean "this file is bad"
        raise DataError(f"{path}: cannot be unpickled ({type(e).__name__}: {e}); it is truncated or corrupt") from e
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batch(path: Path, label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    batch = read_batch(path)
    if "data" not in batch or label_key not in batch:
        raise DataError(f"{path}: expected keys 'data' and {label_key!r}, found {sorted(batch)}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' should be uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: {label_key!r} should be {len(data)} integers, got {labels.dtype} {labels.shape}")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels.astype(np.int64))


@dataclass(frozen=True)
class CifarSpec(OnDiskSpec):
    """CIFAR-10/100: ``required`` lists the training batches, then the test batch, then the meta file."""

    label_key: str = "labels"
    names_key: str = "label_names"

    def read(self, folder: Path) -> LoadedData:
        files = [self.file(folder, i) for i in range(len(self.required))]
        *train_files, test_file, meta_file = files
        parts = [_batch(f, self.label_key) for f in train_files]
        train = (torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts]))
        return self.assemble(
            folder, train=train, test=_batch(test_file, self.label_key), classes=self._class_names(meta_file)
        )

    def _class_names(self, meta_file: Path) -> tuple[str, ...]:
        names = read_batch(meta_file).get(self.names_key)
        if names is None or len(names) != self.num_classes:
            raise DataError(f"{meta_file}: expected {self.num_classes} class names under {self.names_key!r}")
        return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _cifar(name: str, title: str, num_classes: int, folder: str, archive: str, md5: str, **kw: Any) -> CifarSpec:
    return CifarSpec(
        name=name,
        title=title,
        num_classes=num_classes,
        in_channels=3,
        image_size=(32, 32),
        flip=True,
        crop_padding=4,
        classes=(),  # read from the meta file
        resources=(Resource(archive, md5, (f"https://www.cs.toronto.edu/~kriz/{archive}",), extract=True),),
        sizes=(50000, 10000),
        aliases=(folder,),
        files_hint=f"unpack {archive} in a FOLDER (it creates {folder}/)",
        **kw,
    )


CIFAR10 = _cifar(
    "cifar10",
    "CIFAR-10",
    10,
    "cifar-10-batches-py",
    "cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a",
    required=(*((f"data_batch_{i}",) for i in range(1, 6)), ("test_batch",), ("batches.meta",)),
)

CIFAR100 = _cifar(
    "cifar100",
    "CIFAR-100",
    100,
    "cifar-100-python",
    "cifar-100-python.tar.gz",
    "eb9058c3a382ffc7106e4002c42a8d85",
    required=(("train",), ("test",), ("meta",)),
    label_key="fine_labels",
    names_key="fine_label_names",
)
