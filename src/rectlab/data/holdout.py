"""Validation splits for model selection: ``NAME-val`` holds out the last training examples as its test split.

A search that picks among many candidates by their test error would report a winner whose test error is
biased low (it won partly by luck on those very test images). ``fashion-mnist-val`` instead trains on the
first 50,000 training images and evaluates on the last 10,000, so the real test set stays untouched for
the final comparison. Normalisation statistics stay those of the whole training set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import DataError, DatasetSpec, LoadedData

__all__ = ["HoldoutSpec", "holdout"]


@dataclass(frozen=True)
class HoldoutSpec(DatasetSpec):
    """``base`` with its last ``size`` training examples as the test split and the rest as the training split."""

    base: DatasetSpec
    size: int
    name: str
    title: str

    def find(self, data_dir: str | Path | None = None) -> Path | None:
        return self.base.find(data_dir)

    def load(self, data_dir: str | Path | None = None, download: bool = True, **options: Any) -> LoadedData:
        data = self.base.load(data_dir=data_dir, download=download, **options)
        if not data.in_memory or data.train_x is None or data.train_y is None:
            raise DataError(f"{self.name}: a validation split needs an in-memory dataset, {data.name} is not")
        n = data.num_train - self.size
        if n < 1:
            raise DataError(
                f"{self.name}: {data.name} has {data.num_train} training examples, too few to hold out {self.size}"
            )
        return dataclasses.replace(
            data,
            name=self.name,
            train_x=data.train_x[:n],
            train_y=data.train_y[:n],
            test_x=data.train_x[n:],
            test_y=data.train_y[n:],
        )


def holdout(base: DatasetSpec, size: int) -> HoldoutSpec:
    """``<base>-val``: the validation split of ``base`` holding out its last ``size`` training examples."""
    return HoldoutSpec(
        base,
        size,
        f"{base.name}-val",
        f"{base.title}: validation split (last {size:,} training examples; trained on the rest)",
    )
