"""Studies: TOML specs, grid expansion, executors and the SQLite result store."""

from .grid import Cell, Run, baseline_of, cells, runs
from .runner import EXECUTORS, execute_run, pending_runs, run_study
from .spec import SpecError, StudySpec, load_spec, parse_spec, spec_from_dict
from .store import Store

__all__ = [
    "EXECUTORS",
    "Cell",
    "Run",
    "SpecError",
    "Store",
    "StudySpec",
    "baseline_of",
    "cells",
    "execute_run",
    "load_spec",
    "parse_spec",
    "pending_runs",
    "run_study",
    "runs",
    "spec_from_dict",
]
