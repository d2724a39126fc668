"""Studies: TOML specs, grid expansion, validation, executors, the lock and the SQLite result store; the trials of
a user's own training function (`Trial`)."""

from .checkpoints import StoreCheckpoints
from .executors import EXECUTORS
from .function import FunctionConfig, FunctionError
from .grid import Cell, Run, baseline_of, cells, runs
from .lock import StudyDirError, StudyLock, StudyLocked
from .numerics import NumericsChanged
from .runner import Plan, StudyMismatch, execute_run, pending_runs, plan_study, run_study
from .spec import SpecError, StudySpec, load_spec, parse_spec, spec_from_dict
from .store import Store, StoreError
from .trial import Trial, TrialError

__all__ = [
    "EXECUTORS",
    "Cell",
    "FunctionConfig",
    "FunctionError",
    "NumericsChanged",
    "Plan",
    "Run",
    "SpecError",
    "Store",
    "StoreCheckpoints",
    "StoreError",
    "StudyDirError",
    "StudyLock",
    "StudyLocked",
    "StudyMismatch",
    "StudySpec",
    "Trial",
    "TrialError",
    "baseline_of",
    "cells",
    "execute_run",
    "load_spec",
    "parse_spec",
    "pending_runs",
    "plan_study",
    "run_study",
    "runs",
    "spec_from_dict",
]
