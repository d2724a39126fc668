"""The budget check: does a spec's epoch budget reach the models' final accuracy, or only the end of a schedule?

A plateau of the training loss proves little under a cosine schedule, whose last epochs run at a near-zero
learning rate. The budget check trains the first 3 seeds of every cell again at **twice the epochs** and
compares the spec's metric at the end of both budgets: a cell passes when the mean over those seeds moved by
at most the tolerance (half the claim's margin, declared as ``budget_tolerance`` in the claim's spec). Runs
stuck at chance level that learn with more epochs fail it.

The check is run once per spec and scale (``rectlab reproduce NAME --scale quick --budget-check``) and
recorded with the specs, in ``budget-checks.json`` beside them, under ``"<spec file>@<scale>"`` with the
spec's digest; reports show the record, and a final-accuracy claim on a cell whose recorded check failed is
inconclusive ("not converged within the budget"). A record whose digest differs from the current spec's is
shown as stale and not used.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import InputError
from ..report.collect import collect
from ..study.grid import runs as grid_runs
from ..study.runner import run_study
from ..study.store import Store
from .core import Reproduction, load_part_spec, studies_dir

__all__ = ["BUDGET_FILE", "SEEDS", "annotate", "budget_rows", "load_budget", "record_key", "run_budget_check"]

BUDGET_FILE = "budget-checks.json"
SEEDS = 3  # seeds per cell at the doubled budget


def record_key(spec_file: str, scale: str) -> str:
    return f"{spec_file}@{scale}"


def load_budget(studies: str | Path | None = None) -> dict[str, Any]:
    """Every recorded budget check (``{"<spec>@<scale>": record}``), empty when none is recorded."""
    path = studies_dir(studies) / BUDGET_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _cell_key(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(values), sort_keys=True)


def annotate(results: Any, spec: Any, record: Mapping[str, Any] | None) -> str:
    """Attach each cell's recorded budget check to ``cell.budget``; return a sentence on the record's state.

    The record applies only when it was made for this spec (same digest); otherwise it is reported as stale.
    """
    if not record:
        return "no budget check recorded for this spec and scale"
    if record.get("digest") != spec.digest:
        return (
            f"the recorded budget check ({record.get('date', '?')}) was made for another version of this spec "
            "and is not used; re-run it with --budget-check"
        )
    cells = record.get("cells", {})
    for cell in results.cells:
        entry = cells.get(_cell_key(cell.values))
        if entry is not None:
            cell.budget = {**entry, "metric": record.get("metric"), "tolerance": record.get("tolerance")}
    failed = [k for k, v in cells.items() if not v.get("passed")]
    return (
        f"budget check ({record.get('date', '?')}, {record.get('seeds')} seeds per cell at "
        f"{record.get('epochs', ['?', '?'])[1]} instead of {record.get('epochs', ['?'])[0]} epochs, "
        f"{record.get('metric')} within ±{record.get('tolerance')}): "
        + ("passed in every cell" if not failed else f"failed in {len(failed)} of {len(cells)} cells")
    )


def budget_rows(record: Mapping[str, Any] | None) -> list[list[str]]:
    """Table rows (cell, metric at the budget, at twice the budget, shift, passed) of a record."""
    if not record:
        return []
    rows = []
    for key, v in record.get("cells", {}).items():
        label = ", ".join(f"{k}={val}" for k, val in json.loads(key).items())
        rows.append(
            [label, f"{v['budget']:.3f}", f"{v['doubled']:.3f}", f"{v['shift']:+.3f}", "yes" if v["passed"] else "no"]
        )
    return rows


def _finals(results: Any, metric: str, seeds: set[int]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for cell in results.cells:
        vals = [
            float(r["epochs"][-1][metric])
            for r in cell.runs
            if int(r["seed"]) in seeds and r["epochs"] and r["epochs"][-1].get(metric) is not None
        ]
        vals += [100.0 if metric.endswith("error") else float("nan") for r in cell.diverged if int(r["seed"]) in seeds]
        out[_cell_key(cell.values)] = vals
    return out


def run_budget_check(
    repro: Reproduction,
    scale: str,
    out: str | Path,
    *,
    studies: str | Path | None = None,
    record: bool = True,
    **execution: Any,
) -> dict[str, Any]:
    """Train the first `SEEDS` seeds of every cell of every part at the budget and at twice it; compare.

    Runs of the budget itself are reused from ``out/<part>`` when the reproduction already ran there (same
    runs, same hashes); otherwise they are trained under ``out/budget/<part>/x1``. The doubled budget trains
    under ``out/budget/<part>/x2``.

    Args:
        repro: a reproduction with study parts (custom runners have no epoch budget to check).
        scale: the scale whose specs are checked.
        out: the reproduction's output folder.
        studies: the folder of the specs (the record is written there, in `BUDGET_FILE`).
        record: write the result into `BUDGET_FILE`.
        execution: options of [`rectlab.study.run_study`][rectlab.study.run_study] (executor, workers, device, progress,
            console).

    Returns:
        ``{"<spec>@<scale>": record}`` for every part checked.
    """
    if not repro.parts:
        raise InputError(f"{repro.name} has a custom runner (no epoch budget): the budget check applies to study parts")
    out = Path(out)
    tolerance = float(repro.design(studies).option("budget_tolerance"))
    made: dict[str, Any] = {}
    for part in (p for p in repro.parts if scale in p.scales):
        spec = load_part_spec(repro, part.spec, scale, studies)
        seeds = tuple(spec.seeds[:SEEDS])
        small = dataclasses.replace(spec, seeds=seeds)
        double = dataclasses.replace(small, base=small.base.replace(epochs=2 * small.base.epochs))
        t0 = time.perf_counter()
        main_db = out / part.name / "results.db"
        wanted = {r.hash for r in grid_runs(small)}
        have = (
            {r["hash"] for r in Store(main_db).runs() if r["status"] in ("done", "diverged")}
            if main_db.is_file()
            else set()
        )
        if wanted <= have:
            x1 = collect(out / part.name)
        else:
            run_study(small, out / "budget" / part.name / "x1", **execution)
            x1 = collect(out / "budget" / part.name / "x1")
        run_study(double, out / "budget" / part.name / "x2", **execution)
        x2 = collect(out / "budget" / part.name / "x2")
        metric = spec.metric
        a, b = _finals(x1, metric, set(seeds)), _finals(x2, metric, set(seeds))
        cells = {}
        for key in a:
            if a[key] and b.get(key):
                m1, m2 = float(np.mean(a[key])), float(np.mean(b[key]))
                cells[key] = {"budget": m1, "doubled": m2, "shift": m2 - m1, "passed": bool(abs(m2 - m1) <= tolerance)}
        made[record_key(part.spec, scale)] = {
            "digest": spec.digest,
            "metric": metric,
            "tolerance": tolerance,
            "seeds": len(seeds),
            "epochs": [spec.base.epochs, 2 * spec.base.epochs],
            "cells": cells,
            "passed": all(c["passed"] for c in cells.values()),
            "date": time.strftime("%Y-%m-%d"),
            "rectlab": __version__,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    if record:
        path = studies_dir(studies) / BUDGET_FILE
        existing = json.loads(path.read_text()) if path.is_file() else {}
        existing.update(made)
        path.write_text(json.dumps(dict(sorted(existing.items())), indent=1) + "\n")
    return made
