"""Gather a study's results from ``results.db`` into per-cell statistics (no I/O beyond the store)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..study.store import Store
from .stats import Comparison, Summary, compare, summarize

__all__ = ["CellResult", "StudyResults", "collect"]


@dataclass
class CellResult:
    """Everything the report shows about one grid cell."""

    label: str
    values: dict[str, Any]
    runs: list[dict[str, Any]]
    summary: Summary
    top5: Summary | None
    seconds_per_epoch: Summary
    comparison: Comparison | None
    is_baseline: bool
    baseline_label: str | None
    curves: dict[str, np.ndarray] = field(default_factory=dict)  # metric -> (seeds, epochs)
    slopes: list[dict[str, Any]] = field(default_factory=list)  # per layer, averaged over seeds
    diverged: int = 0  # runs of this cell whose loss became NaN/inf (an outcome; not in ``runs``)

    @property
    def final_by_seed(self) -> dict[int, float]:
        return {r["seed"]: r["final"] for r in self.runs}


@dataclass
class StudyResults:
    name: str
    spec: dict[str, Any]
    metric: str
    cells: list[CellResult]
    incomplete: list[dict[str, Any]]
    versions: dict[str, Any]
    devices: list[str]
    diverged: list[dict[str, Any]] = field(default_factory=list)  # runs with status "diverged"

    @property
    def baseline(self) -> dict[str, Any]:
        return self.spec.get("study", {}).get("baseline", {})


def _label(values: dict[str, Any], varying: list[str]) -> str:
    keys = [k for k in values if k in varying] or list(values)
    if len(keys) == 1:
        return str(values[keys[0]])
    return ", ".join(f"{k}={values[k]}" for k in keys)


def _curves(runs: list[dict[str, Any]], key: str) -> np.ndarray:
    n = min(len(r["epochs"]) for r in runs)
    return np.array([[e.get(key, math.nan) if e.get(key) is not None else math.nan for e in r["epochs"][:n]]
                     for r in runs], dtype=float)


def _mean_slopes(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_layer: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        for row in r.get("extras", {}).get("slopes", []):
            by_layer.setdefault(row["layer"], []).append(row)
    out = []
    for layer, rows in by_layer.items():
        out.append({"layer": layer, "kind": rows[0]["kind"], "num_parameters": rows[0]["num_parameters"],
                    "mean": float(np.mean([r["mean"] for r in rows])), "n": len(rows)})
    return out


def collect(study_dir: str | Path) -> StudyResults:
    """Read ``study_dir/results.db`` and compute statistics per cell.

    Raises:
        FileNotFoundError: when the directory has no results.db.
    """
    path = Path(study_dir) / "results.db"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass the --out directory of a `rectlab compare` or `rectlab run`")
    store = Store(path)
    spec = store.spec() or {}
    study = spec.get("study", {})
    metric = study.get("metric", "test_error")
    grid = spec.get("grid", {})
    varying = [k for k, v in grid.items() if len(v) > 1]
    baseline = study.get("baseline", {})
    all_runs = store.runs()
    done = [r for r in all_runs if r["status"] == "done" and r["epochs"]]
    diverged = [r for r in all_runs if r["status"] == "diverged"]
    incomplete = [r for r in all_runs if r["status"] not in ("done", "diverged")]
    by_cell: dict[str, list[dict[str, Any]]] = {}
    diverged_by_cell: dict[str, int] = {}
    order: list[str] = []
    for r in done + diverged:  # a cell whose runs all diverged is still a cell of the table
        key = json.dumps(r["cell"], sort_keys=True)
        if key not in by_cell:
            order.append(key)
            by_cell[key] = []
        if r["status"] == "diverged":
            diverged_by_cell[key] = diverged_by_cell.get(key, 0) + 1
            continue
        r["final"] = r["epochs"][-1].get(metric)
        by_cell[key].append(r)
    # spec order of cells where possible
    grid_keys = list(grid)

    def sort_key(key: str) -> tuple:
        cell = json.loads(key)
        return tuple(grid[k].index(cell[k]) if k in grid and cell.get(k) in grid[k] else 0 for k in grid_keys)

    order.sort(key=sort_key)
    cells: list[CellResult] = []
    for key in order:
        runs = sorted(by_cell[key], key=lambda r: r["seed"])
        values = json.loads(key)
        base_values = {**values, **baseline}
        base_key = json.dumps(base_values, sort_keys=True)
        is_base = base_key == key
        comparison = None
        base_label = None
        if not is_base and by_cell.get(base_key) and runs:
            base_runs = by_cell[base_key]
            comparison = compare({r["seed"]: r["final"] for r in base_runs}, {r["seed"]: r["final"] for r in runs})
            base_label = _label(base_values, varying)
        top5_vals = [r["epochs"][-1].get("test_top5_error") for r in runs]
        cells.append(CellResult(
            label=_label(values, varying), values=values, runs=runs,
            summary=summarize([r["final"] for r in runs]),
            top5=summarize(top5_vals) if all(v is not None for v in top5_vals) else None,
            seconds_per_epoch=summarize([float(np.mean([e["seconds"] for e in r["epochs"]])) for r in runs]),
            comparison=comparison, is_baseline=is_base, baseline_label=base_label,
            curves={k: _curves(runs, k) for k in ("test_error", "train_loss", "test_loss")} if runs else {},
            slopes=_mean_slopes(runs), diverged=diverged_by_cell.get(key, 0),
        ))
    versions = done[0]["versions"] if done else {}
    devices = sorted({r["device"] for r in done if r["device"]})
    return StudyResults(study.get("name", Path(study_dir).name), spec, metric, cells, incomplete, versions, devices,
                        diverged)
