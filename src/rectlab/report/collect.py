"""Gather a study's results from ``results.db`` into per-cell statistics (no I/O beyond the store)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import data as rdata
from ..errors import MissingFileError
from ..probes import per_site_curves
from ..study.store import Store
from .stats import Comparison, Summary, compare_family, summarize

__all__ = [
    "PLATEAU_TOL",
    "PLATEAU_WINDOW",
    "STALL_TOL",
    "CellResult",
    "StudyResults",
    "chance_loss",
    "collect",
    "converged",
    "final_value",
    "has_train_loss",
    "results_from_runs",
    "site_curves",
    "stalled",
]

PLATEAU_WINDOW = 0.2  # the last 20% of the epochs (at least one epoch-to-epoch step) ...
PLATEAU_TOL = 0.1  # ... may bring at most 10% of the training loss's total fall since the first epoch
STALL_TOL = 0.05  # a run whose training loss stays within 5% of chance (ln C) at every epoch has stalled


def chance_loss(run: dict[str, Any]) -> float | None:
    """ln C, the cross-entropy of a uniform guess over the run's C classes (None when C is unknown).

    C comes from the run's record (``extras["num_classes"]``, written by training) or, for runs recorded
    without it, from the registered dataset when it declares its class count.
    """
    classes = run.get("extras", {}).get("num_classes")
    if classes is None:
        name = run.get("config", {}).get("dataset")
        try:
            spec = rdata.DATASETS.get(name) if name else None
        except LookupError:
            spec = None
        base = getattr(spec, "base", spec)  # a validation split wraps its dataset
        classes = getattr(base, "num_classes", None) or len(getattr(base, "classes", ()) or ()) or None
    return math.log(classes) if classes and classes > 1 else None


def stalled(run: dict[str, Any], tol: float = STALL_TOL) -> bool:
    """Whether a finished run never left chance level: its training loss within ``tol`` x ln C of ln C at every
    epoch. Such a run is an outcome of its own ("stalled"), counted and shown like a diverged one."""
    chance = chance_loss(run)
    losses = [e.get("train_loss") for e in run.get("epochs", [])]
    if chance is None or not losses or any(v is None or not math.isfinite(v) for v in losses):
        return False
    return all(abs(v - chance) <= tol * chance for v in losses)


def converged(run: dict[str, Any], window: float = PLATEAU_WINDOW, tol: float = PLATEAU_TOL) -> bool:
    """Whether a run's training loss reached a plateau (the convergence gate of final-accuracy claims).

    Plateau: over the last ``window`` of the epochs (at least one epoch-to-epoch step), the training
    loss fell by at most ``tol`` times its total fall since the end of the first epoch. A run at chance
    level throughout (`stalled`) never counts as converged: it is an outcome of its own. Runs with
    fewer than 3 epochs cannot show a plateau and count as not converged. A plateau can come from the
    learning-rate schedule alone (a cosine schedule ends near zero), so reproductions also record a budget
    check: the same runs at twice the epochs (see ``rectlab.reproduce.budget``).
    """
    losses = [e.get("train_loss") for e in run.get("epochs", [])]
    if len(losses) < 3 or any(v is None or not math.isfinite(v) for v in losses):
        return False
    if stalled(run):
        return False
    k = max(1, round(window * len(losses)))
    recent = losses[-1 - k] - losses[-1]
    total = max(losses[0] - losses[-1], 1e-3 * abs(losses[0]))
    return recent <= tol * total


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
    diverged: list[dict[str, Any]] = field(default_factory=list)  # runs whose loss became NaN/Inf
    planned: int = 0  # the seeds the spec planned for this cell
    budget: dict[str, Any] | None = None  # the cell's recorded budget check, when a reproduction attached one

    @property
    def final_by_seed(self) -> dict[int, float]:
        return {r["seed"]: r["final"] for r in self.runs}

    @property
    def stalled(self) -> list[dict[str, Any]]:
        """Done runs whose training loss never left chance level (see `stalled`); they stay in ``runs``
        with their (chance-level) values."""
        return [r for r in self.runs if stalled(r)]

    @property
    def unconverged(self) -> list[int]:
        """Seeds of done runs, not stalled, whose training loss had not reached a plateau (see `converged`);
        runs that logged no training loss (a function study's, results read from a file) are not judged."""
        return [int(r["seed"]) for r in self.runs if has_train_loss(r) and not converged(r) and not stalled(r)]


def site_curves(cell: Any, prefix: str) -> dict[str, np.ndarray]:
    """``{site: (seeds, epochs) array}`` of the per-site metric ``prefix/<site>`` (see
    [`rectlab.probes`][rectlab.probes])."""
    if cell is None or not cell.runs:
        return {}
    n = min(len(r["epochs"]) for r in cell.runs)
    per_run = [per_site_curves(r["epochs"][:n], prefix) for r in cell.runs]
    sites = list(dict.fromkeys(s for pr in per_run for s in pr))
    return {s: np.array([pr.get(s, [math.nan] * n) for pr in per_run], dtype=float) for s in sites}


@dataclass
class StudyResults:
    """A study's runs grouped into cells, with the statistics of each cell against its baseline.

    Attributes:
        name, spec, metric: the study, its saved spec and the compared metric.
        cells: one [`CellResult`][rectlab.report.CellResult] per grid cell with done or diverged runs, in grid order.
        incomplete: runs neither done nor diverged (failed, interrupted, running), with their errors.
        versions, devices: what the runs were trained with.
        set_aside: files set aside instead of being used (a checkpoint newer than the database, damaged or
            changed on disk), each ``{"path", "hash", "reason", "time"}``; their runs restarted from scratch.
    """

    name: str
    spec: dict[str, Any]
    metric: str
    cells: list[CellResult]
    incomplete: list[dict[str, Any]]
    versions: dict[str, Any]
    devices: list[str]
    set_aside: list[dict[str, Any]] = field(default_factory=list)

    @property
    def baseline(self) -> dict[str, Any]:
        return self.spec.get("study", {}).get("baseline", {})

    @property
    def goal(self) -> str:
        """``"min"`` (lower is better) or ``"max"`` (higher is better: a function study's metric)."""
        return self.spec.get("study", {}).get("goal", "min")

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Runs that raised an error (listed in every report)."""
        return [r for r in self.incomplete if r["status"] == "failed"]

    @property
    def diverged(self) -> list[dict[str, Any]]:
        """Runs whose training loss became NaN/Inf (outcomes, not errors)."""
        return [r for c in self.cells for r in c.diverged]

    @property
    def stalled(self) -> list[dict[str, Any]]:
        """Done runs whose training loss never left chance level (outcomes, like diverged runs)."""
        return [r for c in self.cells for r in c.stalled]

    @property
    def converged(self) -> bool:
        """Whether every done run that did not stall reached a plateau (diverged and stalled runs are outcomes
        and do not count here)."""
        return all(not c.unconverged for c in self.cells) and any(c.runs for c in self.cells)

    def run_counts(self) -> dict[str, int]:
        """``{"done": k, "diverged": k, "stalled": k, "failed": k}`` plus any other status present (e.g.
        "interrupted"). The first four do not overlap: "done" counts the finished runs that did not stall."""
        stalled_runs = len(self.stalled)
        counts = {
            "done": sum(len(c.runs) for c in self.cells) - stalled_runs,
            "diverged": len(self.diverged),
            "stalled": stalled_runs,
            "failed": 0,
        }
        for r in self.incomplete:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return counts


def has_train_loss(run: dict[str, Any]) -> bool:
    """Whether a run logged a training loss (its plateau can be judged: see `converged`)."""
    return any(e.get("train_loss") is not None for e in run.get("epochs", []))


def final_value(run: dict[str, Any], metric: str) -> Any:
    """A run's final ``metric``: what a user's function returned (``extras["final"]``), else its last epoch's."""
    final = (run.get("extras") or {}).get("final") or {}
    if metric in final:
        return final[metric]
    return run["epochs"][-1].get(metric) if run.get("epochs") else None


def _seconds_per_epoch(run: dict[str, Any]) -> float:
    seconds = [e["seconds"] for e in run.get("epochs", []) if e.get("seconds") is not None]
    return float(np.mean(seconds)) if seconds else math.nan


def _label(values: dict[str, Any], varying: list[str]) -> str:
    keys = [k for k in values if k in varying] or list(values)
    if len(keys) == 1:
        return str(values[keys[0]])
    return ", ".join(f"{k}={values[k]}" for k in keys)


def _curves(runs: list[dict[str, Any]], key: str) -> np.ndarray:
    n = min(len(r["epochs"]) for r in runs)
    if not any(e.get(key) is not None for r in runs for e in r["epochs"][:n]):
        return np.zeros((len(runs), 0))  # not logged
    return np.array(
        [[e.get(key, math.nan) if e.get(key) is not None else math.nan for e in r["epochs"][:n]] for r in runs],
        dtype=float,
    )


def _mean_slopes(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_layer: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        for row in r.get("extras", {}).get("slopes", []):
            by_layer.setdefault(row["layer"], []).append(row)
    out = []
    for layer, rows in by_layer.items():
        out.append(
            {
                "layer": layer,
                "kind": rows[0]["kind"],
                "num_parameters": rows[0]["num_parameters"],
                "mean": float(np.mean([r["mean"] for r in rows])),
                "n": len(rows),
            }
        )
    return out


def collect(study_dir: str | Path) -> StudyResults:
    """Read ``study_dir/results.db`` and compute statistics per cell.

    Raises:
        FileNotFoundError: when the directory has no results.db.
        StoreError: results.db is not a readable rectlab database (it is opened read-only: never changed).
    """
    path = Path(study_dir) / "results.db"
    if not path.is_file():
        raise MissingFileError(f"{path} not found: pass the --out directory of a `rectlab compare` or `rectlab run`")
    store = Store(path, readonly=True)
    spec = store.spec() or {}
    results = results_from_runs(spec.get("study", {}).get("name", Path(study_dir).name), spec, store.runs())
    results.set_aside = store.set_aside()
    return results


def results_from_runs(name: str, spec: dict[str, Any], all_runs: Sequence[dict[str, Any]]) -> StudyResults:
    """Per-cell statistics of runs given as `rectlab.study.Store.runs` rows (``cell``, ``seed``, ``status``,
    ``epochs``, ``extras``, ...), for the study ``spec`` (its ``study.metric``, ``study.goal``,
    ``study.baseline`` and ``grid``). `collect` reads them from ``results.db``; `rectlab.report.analyze` builds
    them from a table of results computed elsewhere.
    """
    study = spec.get("study", {})
    metric = study.get("metric", "test_error")
    sign = -1.0 if study.get("goal", "min") == "max" else 1.0  # the tests compare lower-is-better values
    grid = spec.get("grid", {})
    varying = [k for k, v in grid.items() if len(v) > 1]
    baseline = study.get("baseline", {})
    done = [r for r in all_runs if r["status"] == "done" and (r["epochs"] or (r.get("extras") or {}).get("final"))]
    diverged = [r for r in all_runs if r["status"] == "diverged"]
    incomplete: list[dict[str, Any]] = [r for r in all_runs if r["status"] not in ("done", "diverged")]
    for r in done:
        r["final"] = final_value(r, metric)
    unusable = [r for r in done if not isinstance(r["final"], (int, float)) or not math.isfinite(r["final"])]
    for r in unusable:  # finished without a usable value of the metric: listed with the failures
        done.remove(r)
        incomplete.append(
            {
                **r,
                "status": "failed",
                "error": f"finished without a finite {metric} (got "
                f"{r['final']!r}); return it from the training function or log it",
            }
        )
    by_cell: dict[str, list[dict[str, Any]]] = {}
    diverged_by_cell: dict[str, list[dict[str, Any]]] = {}
    order: list[str] = []
    for r in done + diverged:
        key = json.dumps(r["cell"], sort_keys=True)
        if key not in by_cell:
            order.append(key)
            by_cell[key] = []
        if r["status"] == "done":
            by_cell[key].append(r)
        else:
            diverged_by_cell.setdefault(key, []).append(r)
    # spec order of cells where possible
    grid_keys = list(grid)

    def sort_key(key: str) -> tuple:
        cell = json.loads(key)
        return tuple(grid[k].index(cell[k]) if k in grid and cell.get(k) in grid[k] else 0 for k in grid_keys)

    order.sort(key=sort_key)
    seeds = study.get("seeds", [])
    # a list of seeds or a count; other values (e.g. analyze's "unpaired" rows) plan nothing
    planned = len(seeds) if isinstance(seeds, list) else seeds if isinstance(seeds, int) else 0
    cells: list[CellResult] = []
    pairs: list[tuple[dict[int, float], dict[int, float]] | None] = []
    for key in order:
        runs = sorted(by_cell[key], key=lambda r: r["seed"])
        values = json.loads(key)
        base_values = {**values, **baseline}
        base_key = json.dumps(base_values, sort_keys=True)
        is_base = base_key == key
        pair = None
        base_label = None
        if not is_base and by_cell.get(base_key) and runs:
            pair = (
                {r["seed"]: sign * r["final"] for r in by_cell[base_key]},
                {r["seed"]: sign * r["final"] for r in runs},
            )
            base_label = _label(base_values, varying)
        pairs.append(pair)
        top5_vals = [final_value(r, "test_top5_error") for r in runs]
        cells.append(
            CellResult(
                label=_label(values, varying),
                values=values,
                runs=runs,
                summary=summarize([r["final"] for r in runs]),
                top5=summarize(top5_vals) if runs and all(v is not None for v in top5_vals) else None,
                seconds_per_epoch=summarize([v for v in map(_seconds_per_epoch, runs) if not math.isnan(v)]),
                comparison=None,
                is_baseline=is_base,
                baseline_label=base_label,
                curves={k: _curves(runs, k) for k in dict.fromkeys(("test_error", "train_loss", "test_loss", metric))}
                if runs
                else {},
                slopes=_mean_slopes(runs),
                diverged=sorted(diverged_by_cell.get(key, []), key=lambda r: r["seed"]),
                planned=planned,
            )
        )
    # Holm over the study's comparisons; each one's CI, MDE and verdict at the level Holm tests it at
    for cell, comparison in zip(cells, compare_family(pairs)):
        if comparison is not None and sign < 0:  # back to the metric's own direction (verdicts already judged)
            comparison = replace(
                comparison, diff=-comparison.diff, ci_low=-comparison.ci_high, ci_high=-comparison.ci_low
            )
        cell.comparison = comparison
    versions = done[0].get("versions") or {} if done else {}
    devices = sorted({r["device"] for r in done if r.get("device")})
    return StudyResults(name, spec, metric, cells, incomplete, versions, devices)
