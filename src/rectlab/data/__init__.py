"""Datasets: a registry of loaders and one entry point, [`load`][rectlab.data.load].

>>> data = rectlab.data.load("fashion-mnist")          # doctest: +SKIP
>>> data.describe()                                      # doctest: +SKIP
'fashion-mnist: 60000 train / 10000 test, 1x28x28 uint8 in memory, 10 classes, from /usr/share/datasets/fashion-mnist'

Registered datasets: ``fashion-mnist`` (the project's default), ``mnist``, ``cifar10``,
``cifar100``, ``svhn``, ``digits`` (scikit-learn, offline) and ``imagefolder`` (your own
``train/`` + ``val/`` class folders); ``fashion-mnist-val``, ``cifar10-val`` and ``digits-val`` are
validation splits (see `rectlab.data.holdout`). Files are searched in ``data_dir``, ``$RECTLAB_DATA``,
the user cache and system folders (see `rectlab.data.locate`) and downloaded into the
cache when missing and a network is available. Importing this package reads no file and
imports none of scikit-learn, scipy.io, PIL or torchvision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..registry import Registry
from . import augment, locate
from .augment import iterate_batches, normalize, random_crop_flip
from .cifar import CIFAR10, CIFAR100
from .core import DataError, DatasetNotFoundError, DatasetSpec, LoadedData
from .digits import DIGITS
from .folder import IMAGE_FOLDER
from .holdout import holdout
from .idx import FASHION_MNIST, MNIST
from .svhn import SVHN

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "DataError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "LoadedData",
    "augment",
    "find",
    "iterate_batches",
    "load",
    "locate",
    "names",
    "normalize",
    "random_crop_flip",
]

DEFAULT_DATASET = "fashion-mnist"

DATASETS: Registry[DatasetSpec] = Registry("dataset")
for _spec in (FASHION_MNIST, MNIST, CIFAR10, CIFAR100, SVHN, DIGITS, IMAGE_FOLDER):
    DATASETS.register(_spec.name, _spec)
# Validation splits (the last training examples as the test split), for model selection such as rectlab search.
for _split in (holdout(FASHION_MNIST, 10_000), holdout(CIFAR10, 5_000), holdout(DIGITS, 300)):
    DATASETS.register(_split.name, _split)
del _spec, _split


def load(name: str, data_dir: str | Path | None = None, download: bool = True, **options: Any) -> LoadedData:
    """Load dataset ``name``, downloading it first when it is missing and ``download`` is True.

    Args:
        name: a registered name (see [`names`][rectlab.data.names]).
        data_dir: a folder searched before ``$RECTLAB_DATA``, the cache and system folders; downloads go here.
        download: allow downloading (never attempted when False).
        options: dataset-specific options, e.g. ``image_size=224`` for ``imagefolder``.

    Raises:
        UnknownNameError: for an unregistered name (the message lists the known ones).
        DatasetNotFoundError: no copy found and none downloaded; the message says how to get one.
        DataError: a file is truncated, corrupt or inconsistent; the message names it.
    """
    return DATASETS.get(name).load(data_dir=data_dir, download=download, **options)


def names() -> list[str]:
    """The registered dataset names, sorted."""
    return DATASETS.names()


def find(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The folder (or file, for ``digits``) the dataset would be loaded from, or None if there is no copy.

    Looks only: reads no data and downloads nothing.
    """
    return DATASETS.get(name).find(data_dir)
