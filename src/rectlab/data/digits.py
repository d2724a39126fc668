"""scikit-learn's 8x8 handwritten digits (1,797 images): tiny, offline, for quick runs and tests.

The pixel values 0..16 are scaled to uint8 0..255 so that every in-memory dataset looks the same
to the trainer. The train/test split is fixed (stratified by class, 360 test images, seed 0) and
uses numpy's legacy ``RandomState``, whose streams numpy keeps stable across versions, so the
split never changes under a user's feet.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputTypeError
from .core import DataError, DatasetSpec, LoadedData, in_memory_data

__all__ = ["DIGITS", "DigitsSpec", "stratified_split"]


def stratified_split(labels: np.ndarray, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices, with each class split in proportion (largest remainder rounding).

    Deterministic for a given ``seed``; exactly ``test_size`` test indices.
    """
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * test_size / len(labels)
    take = np.floor(exact).astype(int)
    # hand the rounding leftovers to the classes with the largest fractional parts (ties: lower class)
    leftovers = test_size - int(take.sum())
    take[np.argsort(-(exact - take), kind="stable")[:leftovers]] += 1
    rng = np.random.RandomState(seed)
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)])
    mask = np.zeros(len(labels), dtype=bool)
    mask[test] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


@dataclass(frozen=True)
class DigitsSpec(DatasetSpec):
    """The digits bundled with scikit-learn; nothing to find on disk or download."""

    name: str = "digits"
    title: str = "scikit-learn digits"
    test_size: int = 360
    seed: int = 0

    def find(self, data_dir: str | Path | None = None) -> Path | None:
        """The data file inside the installed scikit-learn (located without importing it), or None."""
        spec = importlib.util.find_spec("sklearn")
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        return path if path.is_file() else None

    def load(self, data_dir: str | Path | None = None, download: bool = True, **options: Any) -> LoadedData:
        """Load the digits; ``data_dir`` and ``download`` are accepted for a uniform API and ignored."""
        if options:
            raise InputTypeError(f"dataset {self.name!r} takes no options, got {', '.join(sorted(options))}")
        try:
            from sklearn.datasets import load_digits  # lazy: scikit-learn is an optional, slow import
        except ImportError as e:
            raise DataError(
                "the digits dataset ships with scikit-learn, which is not installed: "
                "pip install scikit-learn (or pip install 'rectlab[digits]')"
            ) from e
        bunch = load_digits()
        images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
        labels = bunch.target.astype(np.int64)
        train, test = (torch.from_numpy(i) for i in stratified_split(labels, self.test_size, self.seed))
        x, y = torch.from_numpy(images), torch.from_numpy(labels)
        return in_memory_data(
            name=self.name,
            source="scikit-learn",
            num_classes=10,
            image_size=(8, 8),
            in_channels=1,
            flip=False,  # a mirrored digit is not the same digit
            crop_padding=0,  # at 8x8 a 1-pixel shift is 12% of the image and strokes touch the border
            classes=tuple(str(d) for d in range(10)),
            train=(x[train], y[train]),
            test=(x[test], y[test]),
        )


DIGITS = DigitsSpec()
