"""What every dataset loader returns ([`LoadedData`][rectlab.data.LoadedData]), the errors, and the shared checks.

In-memory datasets are validated once, here, whatever format they came from: a loader that
returns without raising has handed over complete, well-formed tensors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from ..errors import InputError, RectlabError

__all__ = [
    "DataError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "LoadedData",
    "channel_stats",
    "in_memory_data",
]


class DataError(RectlabError):
    """A dataset file is missing, truncated, corrupt or inconsistent; the message names the file and the fix."""


class DatasetNotFoundError(DataError):
    """No copy of the dataset was found and none could be downloaded; the message says how to get one."""


@dataclass(frozen=True)
class LoadedData:
    """A loaded dataset plus what a trainer needs to normalise and augment it.

    Small datasets are ``in_memory``: ``train_x`` / ``test_x`` are uint8 tensors (N, C, H, W) and
    ``train_y`` / ``test_y`` int64 tensors (N,), so a trainer can keep them on the GPU and augment
    whole batches with `rectlab.data.augment`. Folder datasets instead carry ``train_set`` /
    ``test_set``, torch Datasets that yield normalised float tensors.

    Attributes:
        name: registry name (``"fashion-mnist"``).
        num_classes: number of labels; labels lie in ``[0, num_classes)``.
        in_channels, image_size: the shape of one image, C and (H, W).
        mean, std: per-channel statistics of the training images in [0, 1] units, for normalisation.
        flip: whether a random horizontal flip is a sensible augmentation for this data.
        crop_padding: pixels of zero padding for random-crop augmentation (0 = no random crop).
        source: the folder the files were read from, or ``"scikit-learn"``.
        classes: class names, index = label.
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool
    crop_padding: int
    source: str
    classes: tuple[str, ...] = ()
    train_x: Tensor | None = field(default=None, repr=False)
    train_y: Tensor | None = field(default=None, repr=False)
    test_x: Tensor | None = field(default=None, repr=False)
    test_y: Tensor | None = field(default=None, repr=False)
    train_set: Dataset | None = field(default=None, repr=False)
    test_set: Dataset | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        tensors = (self.train_x, self.train_y, self.test_x, self.test_y)
        sets = (self.train_set, self.test_set)
        if not (all(t is not None for t in tensors) and all(s is None for s in sets)) and not (
            all(t is None for t in tensors) and all(s is not None for s in sets)
        ):
            raise InputError("LoadedData holds either all four tensors (train/test x/y) or both datasets, not a mix")

    @property
    def in_memory(self) -> bool:
        """True when the data are the tensors ``train_x``... rather than ``train_set`` / ``test_set``."""
        return self.train_x is not None

    @property
    def num_train(self) -> int:
        return len(self.train_x) if self.train_x is not None else len(self.train_set)  # type: ignore[arg-type]

    @property
    def num_test(self) -> int:
        return len(self.test_x) if self.test_x is not None else len(self.test_set)  # type: ignore[arg-type]

    def describe(self) -> str:
        """One line: counts, image shape, classes and where the data came from."""
        h, w = self.image_size
        kind = "uint8 in memory" if self.in_memory else "images read from disk"
        return (
            f"{self.name}: {self.num_train} train / {self.num_test} test, "
            f"{self.in_channels}x{h}x{w} {kind}, {self.num_classes} classes, from {self.source}"
        )

    def to(self, device: torch.device | str) -> LoadedData:
        """A copy with the in-memory tensors moved to ``device`` (folder datasets are returned unchanged)."""
        if not self.in_memory:
            return self
        return dataclasses.replace(
            self,
            train_x=self.train_x.to(device),  # type: ignore[union-attr]
            train_y=self.train_y.to(device),  # type: ignore[union-attr]
            test_x=self.test_x.to(device),  # type: ignore[union-attr]
            test_y=self.test_y.to(device),  # type: ignore[union-attr]
        )

    def limit(self, train: int | None = None, test: int | None = None) -> LoadedData:
        """A copy holding at most ``train`` / ``test`` examples, for quick runs.

        In-memory data keep the *first* n examples (a fixed subset that does not depend on any seed;
        the standard files are already in random order). Folder datasets are sorted by class, so
        the first n would cover few classes: they keep n evenly spaced examples instead.
        Statistics (``mean``, ``std``) stay those of the full training set.
        """
        for what, n in (("train", train), ("test", test)):
            if n is not None and n <= 0:
                raise InputError(f"limit({what}={n}) must be a positive count or None")
        if self.in_memory:
            return dataclasses.replace(
                self,
                train_x=self.train_x[:train],  # type: ignore[index]
                train_y=self.train_y[:train],  # type: ignore[index]
                test_x=self.test_x[:test],  # type: ignore[index]
                test_y=self.test_y[:test],  # type: ignore[index]
            )
        return dataclasses.replace(
            self, train_set=_evenly_spaced(self.train_set, train), test_set=_evenly_spaced(self.test_set, test)
        )


def _evenly_spaced(dataset: Any, n: int | None) -> Any:
    size = len(dataset)
    if n is None or n >= size:
        return dataset
    return Subset(dataset, torch.linspace(0, size - 1, n).round().long().tolist())


class DatasetSpec:
    """One registered dataset: knows where its files may be and how to load them.

    Subclasses implement `find` and `load`. Instances are immutable dataclasses, so a
    variant (other mirrors, another size check) is ``dataclasses.replace(spec, ...)``.
    """

    name: str
    title: str

    def find(self, data_dir: str | Path | None = None) -> Path | None:
        """Where the dataset's files are, or None if no complete copy exists."""
        raise NotImplementedError

    def load(self, data_dir: str | Path | None = None, download: bool = True, **options: Any) -> LoadedData:
        """Load the dataset (downloading it first if allowed and needed)."""
        raise NotImplementedError


def channel_stats(x: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std of uint8 images (N, C, H, W), in [0, 1] units.

    Counts the 256 possible values per channel instead of converting to float: exact, and no
    float copy of the whole dataset (150 M values for CIFAR).
    """
    values = torch.arange(256, dtype=torch.float64)
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1).cpu(), minlength=256).to(torch.float64)
        total = counts.sum()
        mean = (counts * values).sum() / total
        var = (counts * (values - mean) ** 2).sum() / total
        means.append(float(mean) / 255.0)
        stds.append(float(var.sqrt()) / 255.0)
    return tuple(means), tuple(stds)


def in_memory_data(
    *,
    name: str,
    source: str | Path,
    num_classes: int,
    image_size: tuple[int, int],
    in_channels: int,
    flip: bool,
    crop_padding: int,
    classes: tuple[str, ...],
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    sizes: tuple[int, int] | None = None,
) -> LoadedData:
    """Validate uint8 images and int64 labels read from ``source`` and wrap them in
    [`LoadedData`][rectlab.data.LoadedData].

    Raises:
        DataError: if a dtype, shape, label or count is not what the dataset defines.
    """
    expected_shape = (in_channels, *image_size)
    expected = f"(N, {', '.join(map(str, expected_shape))})"
    for split, (x, y) in (("training", train), ("test", test)):
        if x.dtype != torch.uint8:
            raise DataError(f"{name} {split} images from {source} are {x.dtype}, expected uint8")
        if x.ndim != 4 or tuple(x.shape[1:]) != expected_shape:
            raise DataError(f"{name} {split} images from {source} have shape {tuple(x.shape)}, expected {expected}")
        if y.dtype != torch.int64 or y.ndim != 1:
            raise DataError(
                f"{name} {split} labels from {source} must be a 1-D int64 tensor, got {y.dtype} {tuple(y.shape)}"
            )
        if len(x) != len(y):
            raise DataError(f"{name} {split} data from {source} has {len(x)} images but {len(y)} labels")
        if len(x) == 0:
            raise DataError(f"{name} {split} data from {source} is empty")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= num_classes:
            raise DataError(
                f"{name} {split} labels from {source} range over [{low}, {high}], outside [0, {num_classes - 1}]: "
                "the label file is corrupt or belongs to another dataset"
            )
    if sizes is not None and (len(train[0]), len(test[0])) != tuple(sizes):
        raise DataError(
            f"{name} in {source} holds {len(train[0])} training and {len(test[0])} test images, but {name} has "
            f"{sizes[0]} and {sizes[1]}: the files are incomplete or belong to another dataset; "
            "delete them and download them again"
        )
    mean, std = channel_stats(train[0])
    return LoadedData(
        name=name,
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=tuple(image_size),  # type: ignore[arg-type]
        mean=mean,
        std=std,
        flip=flip,
        crop_padding=crop_padding,
        source=str(source),
        classes=tuple(classes),
        train_x=train[0],
        train_y=train[1],
        test_x=test[0],
        test_y=test[1],
    )
