"""Run a study: every (cell, seed) run that is not finished yet, recorded in ``results.db``.

A study directory belongs to one spec (its digest is stored): a different spec on the same ``--out`` is
refused with what differs, unless ``extend=True`` and it only adds seeds or grid values. One process at a
time works in a directory (:class:`rectlab.study.lock.StudyLock`). The whole grid is validated before the
first run. Epochs are exactly-once (:class:`StoreCheckpoints`): a process killed at any point leaves each
run at its last committed epoch, and the next invocation resumes from there.

Re-running a study skips ``done`` and ``diverged`` runs (``retry_diverged=True`` trains diverged ones again)
and ``failed`` runs (``retry_failed=True``), and resumes ``interrupted`` and ``running`` (killed) ones.
Executors (local, processes, ray) are in :mod:`rectlab.study.executors`.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import RectlabError
from ..timings import phase
from .executors import EXECUTORS, Job, execute
from .function import FunctionConfig, FunctionError
from .grid import Run, runs
from .lock import StudyLock
from .spec import SpecError, StudySpec, merge_specs, spec_differences, spec_from_dict
from .store import Store
from .trial import run_trial
from .validate import validate_runs

__all__ = ["EXECUTORS", "Plan", "StoreCheckpoints", "StudyMismatch", "execute_run", "pending_runs", "plan_study",
           "run_study"]


class StudyMismatch(RectlabError, ValueError):
    """The study directory holds a different spec."""


class StoreCheckpoints:
    """Epoch checkpoints of a study run, committed together with their epoch rows (exactly-once epochs).

    After epoch e: the state goes to ``checkpoint-e.pt`` (atomically); then one SQLite transaction inserts
    epoch e's row and sets the run's ``checkpoint_epoch`` to e (the commit); then ``checkpoint-e.pt`` is
    renamed to ``checkpoint.pt``. A process killed before the commit leaves the database at e-1 and a
    ``checkpoint-e.pt`` that :meth:`latest` deletes; killed after it, a ``checkpoint-e.pt`` that
    :meth:`latest` renames. Either way the run resumes from the epoch the database holds, and a resumed run
    recomputes exactly the rows it lost (none are half-written).
    """

    def __init__(self, store: Store, run_hash: str, run_dir: Path) -> None:
        self.store, self.hash, self.run_dir = store, run_hash, run_dir
        self.final = run_dir / "checkpoint.pt"

    def _pending(self, epoch: int) -> Path:
        return self.run_dir / f"checkpoint-{epoch}.pt"

    def latest(self) -> Path | None:
        epoch = self.store.checkpoint_epoch(self.hash)
        if epoch and self._pending(epoch).exists():  # committed, not yet renamed
            os.replace(self._pending(epoch), self.final)
        for leftover in [*self.run_dir.glob("checkpoint-*"), *self.run_dir.glob("checkpoint.pt.tmp*")]:
            leftover.unlink()  # uncommitted epochs and half-written files of a killed process
        if epoch == 0 or not self.final.exists():
            self.final.unlink(missing_ok=True)
            self.store.rewind(self.hash, 0)
            return None
        self.store.rewind(self.hash, epoch)
        return self.final

    def save(self, epoch: int, state: dict[str, Any], row: dict[str, Any],
             earlier: Sequence[dict[str, Any]] = ()) -> None:
        """Make ``state`` durable as epoch ``epoch``, committed with its ``row`` (and ``earlier`` rows of epochs
        logged since the last save, which a user's training function may write between checkpoints)."""
        from ..training.loop import atomic_save

        atomic_save(state, self._pending(epoch))
        if earlier:  # rows a user's training function logged between two saves
            self.store.commit_epoch(self.hash, row, earlier)
        else:
            self.store.commit_epoch(self.hash, row)
        os.replace(self._pending(epoch), self.final)


def execute_run(
    out_dir: str | Path,
    study: str,
    run: Run,
    *,
    data: Any = None,
    callbacks: list[Callable] | None = None,
    reporter: Callable[..., None] | None = None,
) -> str:
    """Train one run and record it; returns its final status: "done", "diverged" or "failed".

    A KeyboardInterrupt marks the run "interrupted" and propagates; its last committed epoch checkpoint lets
    the next invocation resume it. A run of a function study calls the user's function instead of `train_one`
    (`rectlab.study.trial.run_trial`), with the same checkpoints, statuses and outcomes.
    """
    from ..training.loop import Diverged, resolve_device, train_one, versions

    out_dir = Path(out_dir)
    store = Store(out_dir / "results.db")
    store.start_run(run.hash, study, run.cell.as_dict(), run.seed, run.config.to_dict(),
                    versions(resolve_device(run.config.device)))
    run_dir = out_dir / "runs" / run.hash
    checkpoints = StoreCheckpoints(store, run.hash, run_dir)
    try:
        if isinstance(run.config, FunctionConfig):  # the user's own training function
            result: Any = run_trial(run.config, run.hash, run_dir, store, checkpoints, label=run.cell.label,
                                    reporter=reporter)
        else:
            result = train_one(run.config, run_dir, data=data, callbacks=callbacks, reporter=reporter,
                               checkpoints=checkpoints)
    except KeyboardInterrupt:
        store.finish_run(run.hash, "interrupted", error="interrupted by the user; re-run the study to resume")
        raise
    except Diverged as e:  # an outcome: kept, reported, not retrained
        store.finish_run(run.hash, "diverged", extras={"diverged": e.as_dict()}, error=str(e))
        return "diverged"
    except Exception as e:  # a failed run must not lose the rest of the study
        store.finish_run(run.hash, "failed", error=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}")
        return "failed"
    store.finish_run(run.hash, "done", extras=result.extras, device=result.device)
    return "done"


def pending_runs(spec: StudySpec, store: Store, *, retry_failed: bool = False,
                 retry_diverged: bool = False) -> list[Run]:
    """Runs of ``spec`` still to train: not started, interrupted or killed (and failed / diverged ones when asked)."""
    finished = {"done"}
    if not retry_failed:
        finished.add("failed")
    if not retry_diverged:
        finished.add("diverged")
    statuses = store.statuses()
    return [r for r in runs(spec) if statuses.get(r.hash) not in finished]


@dataclass
class Plan:
    """What :func:`run_study` will do: the spec to record (``stored``), the runs to train, and counts."""

    spec: StudySpec
    stored: StudySpec
    todo: list[Run]
    counts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        n = self.spec.num_runs
        cells = n // len(self.spec.seeds)
        seen = ", ".join(f"{v} {k}" for k, v in sorted(self.counts.items()) if v)
        return (f"{n} runs ({cells} cells x {len(self.spec.seeds)} seeds), {len(self.todo)} to train"
                + (f"; in the study directory: {seen}" if seen else ""))


def _stored_spec(store: Store | None, out_dir: Path) -> StudySpec | None:
    raw = store.spec() if store is not None else None
    if raw is None:
        return None
    try:
        return spec_from_dict(raw, where=f"{out_dir / 'results.db'} (recorded spec)")
    except SpecError as e:
        raise StudyMismatch(f"{out_dir} holds a study this rectlab cannot read back ({e}); use another --out") from None


def plan_study(spec: StudySpec, out_dir: str | Path, *, extend: bool = False, retry_failed: bool = False,
               retry_diverged: bool = False) -> Plan:
    """Decide what :func:`run_study` would do, without writing anything.

    Raises:
        StudyMismatch: ``out_dir`` holds another spec and ``spec`` does not only add seeds or grid values to it
            (or it does and ``extend`` is False); the message lists the differences.
    """
    out_dir = Path(out_dir)
    db = out_dir / "results.db"
    store = Store(db) if db.is_file() else None
    old = _stored_spec(store, out_dir)
    stored = spec
    if old is not None and old.digest != spec.digest:
        merged = merge_specs(old, spec)
        differences = "; ".join(spec_differences(old, spec))
        if merged is None:
            raise StudyMismatch(f"{out_dir} holds a study with other settings ({differences}); use --out NEW for "
                                "this one (only seeds and grid values can be added to a study, with --extend)")
        if merged.digest == old.digest:
            stored = old  # a part of the recorded study: nothing to add
        elif not extend:
            raise StudyMismatch(f"{out_dir} holds a study with other settings ({differences}); pass --extend to "
                                "add these seeds/grid values to it, or use --out NEW")
        else:
            stored = merged
    if store is None:
        return Plan(spec, stored, runs(spec), {})
    counts: dict[str, int] = {}
    for status in store.statuses().values():
        counts[status] = counts.get(status, 0) + 1
    todo = pending_runs(spec, store, retry_failed=retry_failed, retry_diverged=retry_diverged)
    return Plan(spec, stored, todo, counts)


def run_study(
    spec: StudySpec,
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int = 1,
    threads: int = 1,
    device: str | None = None,
    data_dir: str | None = None,
    extend: bool = False,
    retry_failed: bool = False,
    retry_diverged: bool = False,
    address: str | None = None,
    gpus_per_run: float | None = None,
    progress: bool = True,
    console: Any = None,
    trackers: Sequence[str] = (),
    imports: Sequence[str] = (),
) -> Store:
    """Run every pending run of ``spec`` and return the study's :class:`Store`.

    Args:
        spec: the study.
        out_dir: the study directory (``results.db``, ``runs/<hash>/checkpoint.pt``, ``.rectlab.lock``).
        executor: "local", "processes" or "ray" (see :mod:`rectlab.study.executors`).
        workers: concurrent runs for "processes" (and the default Ray GPU share: 1/workers of a GPU).
        threads: intra-op CPU threads of every run (``torch.set_num_threads``), whatever the executor, so that
            results do not depend on it: the same spec gives bit-identical metrics on CPU with any executor and
            any ``workers``. Default 1 (many small runs side by side use the cores best).
        device: overrides ``spec.base.device`` (does not change run hashes).
        data_dir: overrides where datasets are looked for (it must hold them).
        extend: allow a spec that adds seeds or grid values to the one recorded in ``out_dir``.
        retry_failed, retry_diverged: train failed / diverged runs again.
        address: the Ray cluster to connect to (``"auto"``: the one this machine belongs to).
        gpus_per_run: GPUs requested per Ray task (default ``1/workers`` when the runs use CUDA, else 0).
        progress: show progress bars (rich).
        trackers: experiment trackers for every run (``"tensorboard"``: ``out_dir/tensorboard/<cell>-seed<N>/``).
        imports: plugin modules (names or ``.py`` paths) that worker processes import before training, besides
            the spec's own ``[study] imports`` (see :mod:`rectlab.plugins`).

    Raises:
        StudyMismatch, StudyLocked, SpecError: before anything trains (see :func:`plan_study`).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    for name, value in (("workers", workers), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
            raise ValueError(f"{name} must be an integer from 1 to 1024, got {value!r}")
    if trackers and isinstance(spec.base, FunctionConfig):
        raise FunctionError("--tensorboard logs rectlab's own training loop; a function study logs to TensorBoard "
                            "from the function itself")
    if trackers:
        from ..training.tracking import check_trackers

        trackers = check_trackers(trackers)
    from ..plugins import import_modules, normalize_imports

    imports = normalize_imports([*spec.extra.get("imports", []), *imports])
    import_modules(imports)  # here too: the names must exist before the runs are validated
    overrides = {k: v for k, v in (("device", device), ("data_dir", data_dir)) if v is not None}
    if overrides:
        spec = replace(spec, base=spec.base.replace(**overrides))
    out_dir = Path(out_dir)
    with StudyLock(out_dir):
        with phase("plan"):
            plan = plan_study(spec, out_dir, extend=extend, retry_failed=retry_failed,
                              retry_diverged=retry_diverged)
        with phase("validate (data load, models)"):
            loaded = validate_runs(plan.todo)  # before anything is written
        store = Store(out_dir / "results.db")
        store.save_spec(plan.stored.name, plan.stored.to_dict(), plan.stored.digest)
        if not plan.todo:
            return store
        job = Job(str(out_dir), spec.name, tuple(spec.extra.get("probes", [])), threads, tuple(trackers),
                  tuple(imports))
        with phase("train"):
            execute(executor, job, plan.todo, workers=workers, address=address, gpus_per_run=gpus_per_run,
                    loaded=loaded, progress=progress, console=console)
    return store
