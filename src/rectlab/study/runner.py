"""Run a study: every (cell, seed) run that is not done yet, recorded in ``results.db``.

Executors:
    ``local``     one run after another in this process (progress bars for runs and epochs).
    ``processes`` ``workers`` runs at a time in spawned processes; on one GPU this runs several small
                  grid cells concurrently (``--runs-per-gpu``), on CPU it splits the cores.
    ``ray``       one Ray task per run (``pip install 'rectlab[ray]'``); uses a cluster when
                  ``ray.init`` finds one.
Re-running a study skips completed runs and resumes interrupted ones from their last epoch checkpoint.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from .grid import Run, runs
from .spec import StudySpec
from .store import Store

__all__ = ["run_study", "execute_run", "EXECUTORS", "pending_runs"]

EXECUTORS = ("local", "processes", "ray")


def pending_runs(spec: StudySpec, store: Store) -> list[Run]:
    """Runs of ``spec`` that are not marked done in ``store``."""
    return [r for r in runs(spec) if store.status(r.hash) != "done"]


def _probe_callbacks(spec: StudySpec) -> list[Callable]:
    names = spec.extra.get("probes", [])
    if not names:
        return []
    from .. import probes

    return probes.epoch_callbacks(names)


def execute_run(
    out_dir: str | Path,
    study: str,
    run: Run,
    *,
    data: Any = None,
    callbacks: list[Callable] | None = None,
    reporter: Callable[..., None] | None = None,
) -> str:
    """Train one run and record it; returns its final status ("done" or "failed").

    A KeyboardInterrupt marks the run "interrupted" and propagates; the epoch checkpoint lets the next
    invocation resume it.
    """
    from ..train import resolve_device, train_one, versions

    store = Store(Path(out_dir) / "results.db")
    store.start_run(run.hash, study, run.cell.as_dict(), run.seed, run.config.to_dict(),
                    versions(resolve_device(run.config.device)))

    def report(event: str, **info: Any) -> None:
        if event == "epoch_end":
            store.add_epoch(run.hash, info["metrics"])
        if reporter is not None:
            reporter(event, **info)

    try:
        result = train_one(run.config, Path(out_dir) / "runs" / run.hash, data=data, callbacks=callbacks,
                           reporter=report)
    except KeyboardInterrupt:
        store.finish_run(run.hash, "interrupted", error="interrupted by the user; re-run the study to resume")
        raise
    except Exception as e:  # a failed run must not lose the rest of the study
        store.finish_run(run.hash, "failed", error=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}")
        return "failed"
    store.finish_run(run.hash, "done", extras=result.extras, device=result.device)
    return "done"


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _tracker_callbacks(trackers: Sequence[str], out_dir: str | Path, run: Run) -> list[Callable]:
    if not trackers:
        return []
    from .. import tracking

    return tracking.callbacks(trackers, out_dir, run.cell.label, run.seed)


def _worker(out_dir: str, study: str, run: Run, probe_names: list[str], imports: Sequence[str] = (),
            trackers: Sequence[str] = ()) -> str:
    from ..plugins import import_modules

    import_modules(imports)  # a fresh process: the plugin modules register their names again
    callbacks = []
    if probe_names:
        from .. import probes

        callbacks = probes.epoch_callbacks(probe_names)
    return execute_run(out_dir, study, run, callbacks=callbacks + _tracker_callbacks(trackers, out_dir, run))


def run_study(
    spec: StudySpec,
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int = 1,
    device: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    console: Any = None,
    trackers: Sequence[str] = (),
    imports: Sequence[str] = (),
) -> Store:
    """Run every pending run of ``spec`` and return the study's :class:`Store`.

    Args:
        spec: the study.
        out_dir: the study directory (``results.db``, ``runs/<hash>/checkpoint.pt``).
        executor: "local", "processes" or "ray".
        workers: concurrent runs for "processes" (and the Ray task size: 1/workers of a GPU).
        device: overrides ``spec.base.device`` (does not change run hashes).
        data_dir: overrides where datasets are looked for.
        progress: show progress bars (rich).
        trackers: experiment trackers for every run (``"tensorboard"``: ``out_dir/tensorboard/<cell>-seed<N>/``).
        imports: plugin modules (names or ``.py`` paths) that worker processes import before training, besides
            the spec's own ``[study] imports`` (see :mod:`rectlab.plugins`).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if trackers:
        from ..tracking import check_trackers

        trackers = check_trackers(trackers)
    from ..plugins import import_modules, normalize_imports

    imports = normalize_imports([*spec.extra.get("imports", []), *imports])
    import_modules(imports)  # here too: the names must exist before the runs are built
    overrides: dict[str, Any] = {}
    if device is not None:
        overrides["device"] = device
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if overrides:
        spec = _with_base(spec, spec.base.replace(**overrides))
    out_dir = Path(out_dir)
    store = Store(out_dir / "results.db")
    store.save_spec(spec.name, spec.to_dict())
    todo = pending_runs(spec, store)
    if not todo:
        return store
    if executor == "local" and workers == 1:
        _run_local(spec, out_dir, todo, progress, console, trackers)
    elif executor == "ray":
        _run_ray(spec, out_dir, todo, workers, trackers, imports)
    else:
        _run_processes(spec, out_dir, todo, max(workers, 1), progress, console, trackers, imports)
    return store


def _with_base(spec: StudySpec, base: TrainConfig) -> StudySpec:
    from dataclasses import replace

    return replace(spec, base=base)


def _progress(console: Any, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not enabled or (console is not None and not console.is_terminal), transient=False,
    )


def _run_local(spec: StudySpec, out_dir: Path, todo: list[Run], progress: bool, console: Any,
               trackers: Sequence[str] = ()) -> None:
    from .. import data as rdata

    loaded: dict[tuple[str, str | None], Any] = {}
    callbacks = _probe_callbacks(spec)
    with _progress(console, progress) as bars:
        runs_bar = bars.add_task("runs", total=len(todo))
        epoch_bar = bars.add_task("epoch", total=1, visible=False)
        for run in todo:
            key = (run.config.dataset, run.config.data_dir)
            if key not in loaded:
                loaded[key] = rdata.load(run.config.dataset, data_dir=run.config.data_dir)
            bars.update(runs_bar, description=f"runs [dim]({run.cell.label}, seed {run.seed})[/]")

            def reporter(event: str, epochs: int = run.config.epochs, **info: Any) -> None:
                if event == "epoch_start":
                    bars.reset(epoch_bar, total=info["steps"], visible=True,
                               description=f"epoch {info['epoch']}/{epochs}")
                elif event == "step":
                    bars.advance(epoch_bar)

            t0 = time.perf_counter()
            status = execute_run(out_dir, spec.name, run, data=loaded[key], reporter=reporter,
                                 callbacks=callbacks + _tracker_callbacks(trackers, out_dir, run))
            bars.advance(runs_bar)
            done = int(bars.tasks[runs_bar].completed)
            bars.console.print(f"run {done}/{len(todo)} {status}: {run.cell.label}, seed {run.seed} "
                               f"({time.perf_counter() - t0:.0f} s)")
        bars.update(epoch_bar, visible=False)


def _run_processes(spec: StudySpec, out_dir: Path, todo: list[Run], workers: int, progress: bool,
                   console: Any, trackers: Sequence[str] = (), imports: Sequence[str] = ()) -> None:
    threads = max(1, (os.cpu_count() or 1) // workers)
    probe_names = list(spec.extra.get("probes", []))
    ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
    with _progress(console, progress) as bars, cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)
    ) as pool:
        task = bars.add_task(f"runs ({workers} at a time)", total=len(todo))
        futures = {pool.submit(_worker, str(out_dir), spec.name, run, probe_names, imports, trackers): run
                   for run in todo}
        try:
            for i, fut in enumerate(cf.as_completed(futures), 1):
                run = futures[fut]
                bars.advance(task)
                bars.console.print(f"run {i}/{len(todo)} {fut.result()}: {run.cell.label}, seed {run.seed}")
        except KeyboardInterrupt:
            for fut in futures:
                fut.cancel()
            raise


def _run_ray(spec: StudySpec, out_dir: Path, todo: list[Run], workers: int, trackers: Sequence[str] = (),
             imports: Sequence[str] = ()) -> None:
    try:
        import ray
    except ImportError:
        raise RuntimeError(
            "executor 'ray' needs Ray: pip install 'rectlab[ray]' (or use --executor processes)"
        ) from None
    import torch

    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True)
    gpus = 1.0 / workers if torch.cuda.is_available() and spec.base.device != "cpu" else 0
    remote = ray.remote(num_gpus=gpus)(_worker)
    probe_names = list(spec.extra.get("probes", []))
    ray.get([remote.remote(str(out_dir), spec.name, run, probe_names, imports, trackers) for run in todo])
