"""How a study's runs are executed.

``local``
    One run after another in this process, with progress bars for runs and epochs.
``processes``
    ``workers`` runs at a time in spawned worker processes. A worker is handed its next run only when it
    is idle, so nothing is queued where Ctrl-C cannot reach it. Workers die with their parent (Linux's
    parent-death signal, and a watchdog thread elsewhere), and Ctrl-C stops the queue at once: the running
    runs are marked ``interrupted`` at their last committed epoch. A worker that dies (killed, out of
    memory) has its run marked ``failed`` and is replaced.
``ray``
    One Ray task per run, on the local machine or a cluster (``address="auto"``), each asking for
    ``threads`` CPUs and ``gpus_per_run`` GPUs.

Every executor runs each run with the same number of intra-op threads (``Job.threads``, set with
``torch.set_num_threads``) and the same seeds, so a study gives bit-identical metrics on CPU whichever
executor and however many workers run it.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import data as rdata
from .. import probes
from ..errors import DiskError, UnavailableError
from ..plugins import import_modules
from ..training import tracking
from .grid import Run
from .record import execute_run
from .store import Store

__all__ = ["EXECUTORS", "Job", "execute"]

EXECUTORS = ("local", "processes", "ray")


@dataclass(frozen=True)
class Job:
    """What every run of a study shares (sent to workers): where it is stored, its probes, its threads, its
    trackers and the plugin modules to import."""

    out_dir: str
    study: str
    probes: tuple[str, ...] = ()
    threads: int = 1
    trackers: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()  # plugin modules: a worker process imports them before its first run

    def callbacks(self, run: Run) -> list[Any]:
        callbacks: list[Any] = []
        if self.probes:
            callbacks += probes.epoch_callbacks(list(self.probes))
        if self.trackers:
            callbacks += tracking.callbacks(self.trackers, self.out_dir, run.cell.label, run.seed)
        return callbacks

    def run(self, run: Run, data: Any = None, reporter: Any = None) -> str:
        """Train ``run`` with this job's threads, probes and trackers; returns its status."""
        import_modules(self.imports)  # in a fresh worker process they register their names (already done here)
        with _threads(self.threads):
            return execute_run(self.out_dir, self.study, run, data=data, callbacks=self.callbacks(run),
                               reporter=reporter)


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def execute(executor: str, job: Job, todo: list[Run], *, workers: int = 1, address: str | None = None,
            gpus_per_run: float | None = None, loaded: dict | None = None, progress: bool = True,
            console: Any = None) -> None:
    """Train ``todo`` with ``executor``; ``loaded`` holds datasets already in memory (for ``local``).

    ``processes`` with a single run to train trains it here instead: a worker process would only add its
    start-up (importing torch again, loading the data again: 3-4 s on a 2-core machine) and the results are
    the same with every executor.
    """
    if executor == "ray":
        _run_ray(job, todo, workers, address, gpus_per_run, progress, console)
    elif executor == "processes" and len(todo) > 1:
        _run_processes(job, todo, workers, progress, console)
    else:
        _run_local(job, todo, dict(loaded or {}), progress, console)


def _progress(console: Any, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        # A live bar in a terminal; in a log file only the plain "run i/n ..." lines.
        console=console, disable=not enabled or (console is not None and not console.is_terminal), transient=False,
    )


def _load(loaded: dict, run: Run) -> Any:
    if not hasattr(run.config, "dataset"):  # a trial of the user's own function loads its own data
        return None
    key = (run.config.dataset, run.config.data_dir)
    if key not in loaded:
        loaded[key] = rdata.load(run.config.dataset, data_dir=run.config.data_dir)
    return loaded[key]


# -- local ------------------------------------------------------------------------------------------
def _run_local(job: Job, todo: list[Run], loaded: dict, progress: bool, console: Any) -> None:
    with _progress(console, progress) as bars:
        runs_bar = bars.add_task("runs", total=len(todo))
        epoch_bar = bars.add_task("epoch", total=1, visible=False)
        for run in todo:
            data = _load(loaded, run)
            bars.update(runs_bar, description=f"runs [dim]({run.cell.label}, seed {run.seed})[/]")

            def reporter(event: str, epochs: int = run.config.epochs, **info: Any) -> None:
                if event == "epoch_start":
                    bars.reset(epoch_bar, total=info["steps"], visible=True,
                               description=f"epoch {info['epoch']}/{epochs}")
                elif event == "step":
                    bars.advance(epoch_bar)

            t0 = time.perf_counter()
            status = job.run(run, data=data, reporter=reporter)
            bars.advance(runs_bar)
            done = int(bars.tasks[runs_bar].completed)
            bars.console.print(f"run {done}/{len(todo)} {status}: {run.cell.label}, seed {run.seed} "
                               f"({time.perf_counter() - t0:.0f} s)")
        bars.update(epoch_bar, visible=False)


# -- processes --------------------------------------------------------------------------------------
def _interrupt_once(signum: int, frame: Any) -> None:
    """SIGTERM in a worker: stop the run like Ctrl-C would (once; a second one is ignored meanwhile)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _die_with_parent(parent_pid: int) -> None:
    """Make this process get SIGTERM when its parent dies (Linux), and watch the parent from a thread anyway."""
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):  # an exotic libc: the watchdog thread alone
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60.0)
        os._exit(1)  # still here a minute later: the run did not stop

    threading.Thread(target=watch, name="rectlab-parent-watch", daemon=True).start()


def _worker_main(conn: Connection, job: Job, parent_pid: int) -> None:
    """A worker: train the runs it is sent, one at a time, until it is sent None or stopped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops workers with SIGTERM
    signal.signal(signal.SIGTERM, _interrupt_once)
    _die_with_parent(parent_pid)
    loaded: dict = {}
    try:
        while True:
            run = conn.recv()
            if run is None:
                return
            try:
                data = _load(loaded, run)
            except Exception:  # train_one loads it again and records the error as the run's failure
                data = None
            try:
                conn.send(job.run(run, data=data))
            except DiskError as e:  # the disk, not the run: the parent stops the study with this message
                conn.send(e)
                return
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return


class _Worker:
    def __init__(self, ctx: Any, job: Job) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, job, os.getpid()), daemon=True,
                                   name="rectlab-worker")
        self.process.start()
        child.close()
        self.run: Run | None = None

    def send(self, run: Run) -> None:
        self.run = run
        self.conn.send(run)

    def result(self) -> str | DiskError | None:
        """The status of the run it finished, the error that stopped it (a full or read-only disk), or None
        when the process died."""
        try:
            return self.conn.recv()
        except (EOFError, ConnectionResetError):
            self.process.join(5)
            return None

    def stop(self, interrupt: bool) -> None:
        if self.process.is_alive():
            if interrupt:
                self.process.terminate()  # SIGTERM: the worker marks its run interrupted and exits
            else:
                with suppress(BrokenPipeError, OSError):
                    self.conn.send(None)

    def join(self, timeout: float) -> bool:
        """Wait for the process to end, killing it after ``timeout`` seconds; True when it ended by itself."""
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
            return False
        return True


def _finish(job: Job, run: Run, status: str, error: str) -> None:
    """Record the end of a run whose worker can no longer record it itself."""
    Store(Path(job.out_dir) / "results.db").finish_run(run.hash, status, error=error)


def _died(job: Job, run: Run, exitcode: int | None) -> None:
    how = f"killed by signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
    _finish(job, run, "failed", f"the worker process died ({how}; out of memory?); re-run with --retry-failed")


def _run_processes(job: Job, todo: list[Run], workers: int, progress: bool, console: Any) -> None:
    ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
    queue = list(todo)
    pool = [_Worker(ctx, job) for _ in range(min(workers, len(queue)))]
    interrupted = False
    try:
        with _progress(console, progress) as bars:
            task = bars.add_task(f"runs ({len(pool)} at a time)", total=len(todo))
            finished = 0
            while queue or any(w.run is not None for w in pool):
                for w in pool:
                    if w.run is None and queue:
                        w.send(queue.pop(0))
                busy = [w for w in pool if w.run is not None]
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for i, w in enumerate(pool):
                    if w.run is None or (w.conn not in ready and w.process.sentinel not in ready):
                        continue
                    run, status = w.run, w.result()
                    w.run = None
                    if isinstance(status, DiskError):
                        raise status
                    if status is None:
                        _died(job, run, w.process.exitcode)
                        status = "failed (worker died)"
                        pool[i] = _Worker(ctx, job)
                    finished += 1
                    bars.advance(task)
                    bars.console.print(f"run {finished}/{len(todo)} {status}: {run.cell.label}, seed {run.seed}")
    except BaseException:  # Ctrl-C (or any error here): stop the running runs now, at their last epoch
        interrupted = True
        raise
    finally:
        for w in pool:
            w.stop(interrupt=interrupted)
        for w in pool:
            # Interrupted, a worker gets 15 s to mark its run interrupted (it normally takes 1-3 s); one that
            # does not is killed, and its run is marked here: it resumes from its last committed epoch.
            if not w.join(15 if interrupted else 60) and interrupted and w.run is not None:
                _finish(job, w.run, "interrupted", "interrupted; its worker did not stop within 15 s and was "
                        "killed; re-run the study to resume from the last finished epoch")


# -- ray ----------------------------------------------------------------------------------------------
def _ray_task(job: Job, run: Run) -> str:
    return job.run(run)


def _uses_cuda(todo: list[Run]) -> bool:
    devices = {r.config.device for r in todo}
    return any(d.startswith("cuda") for d in devices) or ("auto" in devices and torch.cuda.is_available())


def _run_ray(job: Job, todo: list[Run], workers: int, address: str | None, gpus_per_run: float | None,
             progress: bool, console: Any) -> None:
    try:
        import ray  # optional (pip install 'rectlab[ray]') and slow to import: only for --executor ray
    except ImportError:
        raise UnavailableError(
            "executor 'ray' needs Ray: pip install 'rectlab[ray]' (or use --executor processes)"
        ) from None
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, TimeoutError) as e:  # no Ray cluster listens at that address
            first = (str(e).splitlines() or [type(e).__name__])[0]
            raise UnavailableError(f"cannot reach the Ray cluster at --address {address} ({first}); start it (ray "
                                   "start --head), check the address, or leave --address out to start a local "
                                   "Ray") from None
    if gpus_per_run is None:
        gpus_per_run = 1.0 / workers if _uses_cuda(todo) else 0.0
    remote = ray.remote(num_cpus=job.threads, num_gpus=gpus_per_run, max_retries=0)(_ray_task)
    refs = {remote.remote(job, run): run for run in todo}
    try:
        with _progress(console, progress) as bars:
            task = bars.add_task("runs (ray)", total=len(todo))
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    run = refs.pop(ref)
                    try:
                        status = ray.get(ref)
                    except ray.exceptions.RayError as e:  # the task's process died (node lost, OOM)
                        cause = getattr(e, "cause", None)
                        if isinstance(cause, DiskError):
                            raise cause from None  # a full or read-only disk stops the study
                        _died(job, run, None)
                        status = f"failed ({type(e).__name__})"
                    bars.advance(task)
                    bars.console.print(f"run {len(todo) - len(refs)}/{len(todo)} {status}: {run.cell.label}, "
                                       f"seed {run.seed}")
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref)  # a running task gets KeyboardInterrupt: its run is marked interrupted
        ray.wait(list(refs), num_returns=len(refs), timeout=60)
        raise
    finally:
        if started:
            ray.shutdown()
