"""Shared by the study tests (not a test module): a tiny digits study, its rows, a child-process environment."""

from __future__ import annotations

import os
from pathlib import Path

from rectlab.study import Store

ROOT = Path(__file__).resolve().parents[1]
# Child processes (workers, torchrun, crash tests) import rectlab from this checkout, single-threaded.
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def tiny_spec(
    activations: tuple[str, ...] = ("relu", "elu"), seeds: int = 2, epochs: int = 2, name: str = "tiny"
) -> str:
    """A study of MLPs on digits: about a second per run on one CPU thread."""
    grid = ", ".join(f'"{a}"' for a in activations)
    return (
        f'[study]\nname = "{name}"\nseeds = {seeds}\nbaseline = {{ activation = "{activations[0]}" }}\n\n'
        f'[base]\nmodel = "mlp"\ndataset = "digits"\nepochs = {epochs}\nbatch_size = 64\ndevice = "cpu"\n\n'
        f"[grid]\nactivation = [{grid}]\n"
    )


def rows(out: Path) -> dict:
    """``{(activation, seed): [epoch rows without the wall-clock seconds]}`` of a study directory."""
    return {
        (r["cell"]["activation"], r["seed"]): [{k: v for k, v in e.items() if k != "seconds"} for e in r["epochs"]]
        for r in Store(out / "results.db").runs()
    }
