"""Grid expansion: a [`StudySpec`][rectlab.study.StudySpec] -> cells -> runs (cell x seed)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from ..training.config import TrainConfig, config_hash
from .function import FunctionConfig
from .spec import StudySpec

__all__ = ["Cell", "Run", "cells", "runs", "baseline_of"]


@dataclass(frozen=True)
class Cell:
    """One combination of grid values; ``key`` is the canonical JSON of ``values``."""

    values: tuple[tuple[str, Any], ...]

    @property
    def key(self) -> str:
        return json.dumps(dict(self.values), sort_keys=True)

    @property
    def label(self) -> str:
        if len(self.values) == 1:
            return str(self.values[0][1])
        return ", ".join(f"{k}={v}" for k, v in self.values)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class Run:
    """One training run of a study."""

    cell: Cell
    seed: int
    config: TrainConfig | FunctionConfig

    @property
    def hash(self) -> str:
        if isinstance(self.config, FunctionConfig):  # a trial of the user's own function
            return self.config.hash
        return config_hash(self.config)


def cells(spec: StudySpec) -> list[Cell]:
    """All grid cells in spec order (first grid field varies slowest)."""
    keys = list(spec.grid)
    return [Cell(tuple(zip(keys, combo))) for combo in itertools.product(*(spec.grid[k] for k in keys))]


def runs(spec: StudySpec) -> list[Run]:
    """Every run: seeds inner, so a partially finished study has whole cells early on... per seed round."""
    out = []
    for seed in spec.seeds:
        for cell in cells(spec):
            out.append(Run(cell, seed, spec.base.replace(**cell.as_dict(), seed=seed)))
    return out


def baseline_of(spec: StudySpec, cell: Cell) -> Cell:
    """The cell this one is compared with: same values, baseline fields replaced."""
    values = dict(cell.values)
    values.update(spec.baseline)
    return Cell(tuple((k, values[k]) for k, _ in cell.values))
