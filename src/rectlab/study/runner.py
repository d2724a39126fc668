"""Run a study: every (cell, seed) run that is not finished yet, recorded in ``results.db``.

A study directory belongs to one spec (its digest is stored): a different spec on the same ``--out`` is
refused with what differs, unless ``extend=True`` and it only adds seeds or grid values. One process at a
time works in a directory (`rectlab.study.lock.StudyLock`). The whole grid is validated before the
first run. Epochs are exactly-once ([`StoreCheckpoints`][rectlab.study.checkpoints.StoreCheckpoints]): a process killed
at any point leaves each run at its last committed epoch, and the next invocation resumes from there.

Re-running a study skips ``done`` and ``diverged`` runs (``retry_diverged=True`` trains diverged ones again)
and ``failed`` runs (``retry_failed=True``), and resumes ``interrupted`` and ``running`` (killed) ones.
Executors (local, processes, ray) are in `rectlab.study.executors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InputError, RectlabError
from ..plugins import import_modules, normalize_imports
from ..timings import phase
from ..training.tracking import check_trackers
from .executors import EXECUTORS, Job, execute
from .function import FunctionConfig, FunctionError
from .grid import Run, runs
from .lock import StudyLock
from .numerics import check_numerics, current_numerics
from .record import StoreCheckpoints, execute_run
from .spec import SpecError, StudySpec, merge_specs, spec_differences, spec_from_dict
from .store import Store, StoreEmpty
from .validate import validate_runs

__all__ = [
    "EXECUTORS",
    "Plan",
    "StoreCheckpoints",
    "StudyMismatch",
    "execute_run",
    "pending_runs",
    "plan_study",
    "run_study",
]


class StudyMismatch(RectlabError, ValueError):
    """The study directory holds a different spec."""


def pending_runs(
    spec: StudySpec, store: Store, *, retry_failed: bool = False, retry_diverged: bool = False
) -> list[Run]:
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
    """What [`run_study`][rectlab.study.run_study] will do: the spec to record (``stored``), the runs to train, and
    counts."""

    spec: StudySpec
    stored: StudySpec
    todo: list[Run]
    counts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        n = self.spec.num_runs
        cells = n // len(self.spec.seeds)
        seen = ", ".join(f"{v} {k}" for k, v in sorted(self.counts.items()) if v)
        return f"{n} runs ({cells} cells x {len(self.spec.seeds)} seeds), {len(self.todo)} to train" + (
            f"; in the study directory: {seen}" if seen else ""
        )


def _existing_store(out_dir: Path) -> Store | None:
    """The study directory's database opened read-only, or None when there is none yet (or an empty one
    left by a process killed as it created it); an emptied one beside checkpoints is refused."""
    db = out_dir / "results.db"
    if not db.is_file():
        return None
    try:
        return Store(db, readonly=True)
    except StoreEmpty:
        Store.refuse_if_emptied(db)
        return None


def _stored_spec(store: Store | None, out_dir: Path) -> StudySpec | None:
    raw = store.spec() if store is not None else None
    if raw is None:
        return None
    try:
        return spec_from_dict(raw, where=f"{out_dir / 'results.db'} (recorded spec)")
    except SpecError as e:
        raise StudyMismatch(f"{out_dir} holds a study this rectlab cannot read back ({e}); use another --out") from None


def plan_study(
    spec: StudySpec,
    out_dir: str | Path,
    *,
    extend: bool = False,
    retry_failed: bool = False,
    retry_diverged: bool = False,
    numerics: dict[str, Any] | None = None,
    allow_numerics_change: bool = False,
) -> Plan:
    """Decide what [`run_study`][rectlab.study.run_study] would do, without writing anything.

    Args:
        numerics: what the runs would be computed with ([current_numerics][rectlab.study.numerics.current_numerics]);
            checked against the numerics the study directory recorded.
        allow_numerics_change: accept numerics that differ from the recorded ones.

    Raises:
        StudyMismatch: ``out_dir`` holds another spec and ``spec`` does not only add seeds or grid values to it
            (or it does and ``extend`` is False); the message lists the differences.
        NumericsChanged: runs are to be trained (resumed, retried, added) in an ``out_dir`` whose runs were
            computed with other ``numerics``.
        StoreError: ``out_dir/results.db`` is not a rectlab database, or empty beside checkpoints.
    """
    out_dir = Path(out_dir)
    store = _existing_store(out_dir)
    old = _stored_spec(store, out_dir)
    stored = spec
    if old is not None and old.digest != spec.digest:
        merged = merge_specs(old, spec)
        differences = "; ".join(spec_differences(old, spec))
        if merged is None:
            raise StudyMismatch(
                f"{out_dir} holds a study with other settings ({differences}); use --out NEW for "
                "this one (only seeds and grid values can be added to a study, with --extend)"
            )
        if merged.digest == old.digest:
            stored = old  # a part of the recorded study: nothing to add
        elif not extend:
            raise StudyMismatch(
                f"{out_dir} holds a study with other settings ({differences}); pass --extend to "
                "add these seeds/grid values to it, or use --out NEW"
            )
        else:
            stored = merged
    if store is None:
        return Plan(spec, stored, runs(spec), {})
    counts: dict[str, int] = {}
    for status in store.statuses().values():
        counts[status] = counts.get(status, 0) + 1
    todo = pending_runs(spec, store, retry_failed=retry_failed, retry_diverged=retry_diverged)
    if numerics is not None and counts and todo:  # runs to add to runs already there
        check_numerics(store.numerics(), numerics, out_dir, allow=allow_numerics_change)
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
    allow_numerics_change: bool = False,
    address: str | None = None,
    gpus_per_run: float | None = None,
    progress: bool = True,
    console: Any = None,
    trackers: Sequence[str] = (),
    imports: Sequence[str] = (),
) -> Store:
    """Run every pending run of ``spec`` and return the study's [`Store`][rectlab.study.Store].

    Args:
        spec: the study.
        out_dir: the study directory (``results.db``, ``runs/<hash>/checkpoint.pt``, ``.rectlab.lock``).
        executor: "local", "processes" or "ray" (see `rectlab.study.executors`).
        workers: concurrent runs for "processes" (and the default Ray GPU share: 1/workers of a GPU).
        threads: intra-op CPU threads of every run (``torch.set_num_threads``), whatever the executor, so that
            results do not depend on it: the same spec gives bit-identical metrics on CPU with any executor and
            any ``workers``. Default 1 (many small runs side by side use the cores best).
        device: overrides ``spec.base.device`` (does not change run hashes).
        data_dir: overrides where datasets are looked for (it must hold them).
        extend: allow a spec that adds seeds or grid values to the one recorded in ``out_dir``.
        retry_failed, retry_diverged: train failed / diverged runs again.
        allow_numerics_change: go on with a study whose recorded numerics (``threads``, the torch version,
            the device kind, determinism flags: see [numerics][rectlab.study.numerics]) differ from this
            invocation's; without it that is refused, as its results would change.
        address: the Ray cluster to connect to (``"auto"``: the one this machine belongs to).
        gpus_per_run: GPUs requested per Ray task (default ``1/workers`` when the runs use CUDA, else 0).
        progress: show progress bars (rich).
        trackers: experiment trackers for every run (``"tensorboard"``: ``out_dir/tensorboard/<cell>-seed<N>/``).
        imports: plugin modules (names or ``.py`` paths) that worker processes import before training, besides
            the spec's own ``[study] imports`` (see [`rectlab.plugins`][rectlab.plugins]).

    Raises:
        StudyMismatch, NumericsChanged, StudyLocked, SpecError, StoreError: before anything trains (see
            `plan_study`).
        DiskError: the disk is full or read-only (everything committed is kept; run it again to resume).
    """
    if executor not in EXECUTORS:
        raise InputError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    for name, value in (("workers", workers), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
            raise InputError(f"{name} must be an integer from 1 to 1024, got {value!r}")
    if not str(out_dir).strip():
        raise InputError("the study directory (--out) is empty; pass a folder name, e.g. --out runs/x")
    if trackers and isinstance(spec.base, FunctionConfig):
        raise FunctionError(
            "--tensorboard logs rectlab's own training loop; a function study logs to TensorBoard "
            "from the function itself"
        )
    if trackers:
        trackers = check_trackers(trackers)
    imports = normalize_imports([*spec.extra.get("imports", []), *imports])
    import_modules(imports)  # here too: the names must exist before the runs are validated
    overrides = {k: v for k, v in (("device", device), ("data_dir", data_dir)) if v is not None}
    if overrides:
        spec = replace(spec, base=spec.base.replace(**overrides))
    out_dir = Path(out_dir)
    with StudyLock(out_dir):
        with phase("plan"):
            numerics = current_numerics(threads, {r.config.device for r in runs(spec)})
            plan = plan_study(
                spec,
                out_dir,
                extend=extend,
                retry_failed=retry_failed,
                retry_diverged=retry_diverged,
                numerics=numerics,
                allow_numerics_change=allow_numerics_change,
            )
        with phase("validate (data load, models)"):
            loaded = validate_runs(plan.todo)  # before anything is written
        store = Store(out_dir / "results.db")
        store.save_spec(plan.stored.name, plan.stored.to_dict(), plan.stored.digest)
        if plan.todo or store.numerics() is None:
            store.save_numerics(numerics)
        if not plan.todo:
            return store
        job = Job(
            str(out_dir), spec.name, tuple(spec.extra.get("probes", [])), threads, tuple(trackers), tuple(imports)
        )
        with phase("train"):
            execute(
                executor,
                job,
                plan.todo,
                workers=workers,
                address=address,
                gpus_per_run=gpus_per_run,
                loaded=loaded,
                progress=progress,
                console=console,
            )
    return store
