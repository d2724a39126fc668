"""How a study's runs are executed.

``local``
    One run after another in this process.
``processes``
    ``workers`` runs at a time in spawned worker processes. A worker is handed its next run only when it
    is idle, so nothing is queued where Ctrl-C cannot reach it. Workers die with their parent (Linux's
    parent-death signal, and a watchdog thread elsewhere), and Ctrl-C stops the queue at once: the running
    runs are marked ``interrupted`` at their last committed epoch. A worker that dies (killed, out of
    memory) has its run marked ``failed`` and is replaced.
``ray``
    One Ray task per run, on the local machine or a cluster (``address="auto"``), each asking for
    ``threads`` CPUs and ``gpus_per_run`` GPUs.

Progress: in a terminal, a live line for the study (epochs and runs done, ETA) and one per run in progress
(its epoch; workers of ``processes`` report each epoch to the parent); in a log file, plain lines.

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
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

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
        # the trackers asked for, and every run's CSV log in its own folder
        callbacks += tracking.callbacks(
            self.trackers,
            self.out_dir,
            run.cell.label,
            run.seed,
            run_dir=Path(self.out_dir) / "runs" / run.hash,
            experiment=self.study,
        )
        return callbacks

    def run(self, run: Run, data: Any = None, reporter: Any = None) -> str:
        """Train ``run`` with this job's threads, probes and trackers; returns its status."""
        import_modules(self.imports)  # in a fresh worker process they register their names (already done here)
        with _threads(self.threads):
            return execute_run(
                self.out_dir, self.study, run, data=data, callbacks=self.callbacks(run), reporter=reporter
            )


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def execute(
    executor: str,
    job: Job,
    todo: list[Run],
    *,
    workers: int = 1,
    address: str | None = None,
    gpus_per_run: float | None = None,
    loaded: dict | None = None,
    progress: bool = True,
    console: Any = None,
) -> None:
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


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class _Display:
    """Progress of a study for a person watching it, as Lightning and tqdm users expect.

    In a terminal: a live line for the whole study (epochs and runs done, elapsed time, ETA) and one per run in
    progress (its epoch, and its steps when the run trains in this process). Otherwise (a log file, a pipe, CI):
    plain lines, "run i/n" when a run ends and an epoch line at most every ``PLAIN_EVERY`` seconds. The ETA
    assumes the epochs still to train cost what the epochs already trained did (wall time, all workers together).
    """

    PLAIN_EVERY = 10.0

    def __init__(self, console: Any, enabled: bool, todo: list[Run], title: str) -> None:
        self.console = console if console is not None else Console()
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self.n_runs = len(todo)
        self.total = sum(r.config.epochs for r in todo)
        self.title = title
        self.done: dict[str, int] = {}  # run hash -> epochs done (trained now or before, when resumed)
        self.trained = 0  # epochs trained since the study started, for the rate
        self.finished = 0
        self.t0: float | None = None  # the first epoch's start: worker start-up and data loading are not epochs
        self.last_line = time.perf_counter()
        self.bars: Any = None
        self.rows: dict[int, Any] = {}

    def __enter__(self) -> _Display:
        if self.live:
            self.bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self.bars.__enter__()
            self.study_row = self.bars.add_task(self.title, total=max(1, self.total), info="")
            self._update_study()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bars is not None:
            for row in self.rows.values():
                self.bars.update(row, visible=False)
            self.bars.__exit__(*exc)

    def eta(self) -> str:
        """``"ETA 2m10s"`` for the whole study, or ``"ETA –"`` before the first epoch ends."""
        remaining = self.total - sum(self.done.values())
        if self.trained < 2 or self.t0 is None:
            return "ETA –"
        return f"ETA {_duration((time.perf_counter() - self.t0) / self.trained * max(0, remaining))}"

    def _summary(self) -> str:
        return f"{sum(self.done.values())}/{self.total} epochs, {self.finished}/{self.n_runs} runs, {self.eta()}"

    def _update_study(self) -> None:
        if self.bars is not None:
            self.bars.update(self.study_row, completed=sum(self.done.values()), info=self._summary())

    def started(self, slot: int, run: Run) -> None:
        if self.bars is not None:
            label = f"  {run.cell.label}, seed {run.seed}"
            if slot in self.rows:
                self.bars.reset(self.rows[slot], total=1, description=label, info="starting", visible=True)
            else:
                self.rows[slot] = self.bars.add_task(label, total=1, info="starting")

    def epoch_start(self, slot: int, run: Run, epoch: int, steps: int | None = None) -> None:
        self.done[run.hash] = max(self.done.get(run.hash, 0), epoch - 1)  # a resumed run starts past epoch 1
        if self.t0 is None:
            self.t0 = time.perf_counter()
        if self.bars is not None and slot in self.rows:
            if steps:  # steps are reported in this process: the row follows them
                self.bars.reset(self.rows[slot], total=steps, info=f"epoch {epoch}/{run.config.epochs}")
            else:
                self.bars.update(
                    self.rows[slot],
                    total=run.config.epochs,
                    completed=epoch - 1,
                    info=f"epoch {epoch}/{run.config.epochs}",
                )
            self._update_study()

    def step(self, slot: int) -> None:
        if self.bars is not None and slot in self.rows:
            self.bars.advance(self.rows[slot])

    def epoch_end(self, slot: int, run: Run, epoch: int, test_error: float | None = None) -> None:
        self.done[run.hash] = max(self.done.get(run.hash, 0), epoch)
        self.trained += 1
        if self.bars is not None:
            self._update_study()
            return
        now = time.perf_counter()
        if self.enabled and now - self.last_line >= self.PLAIN_EVERY:
            self.last_line = now
            error = "" if test_error is None else f", test error {test_error:.2f}%"
            self.console.print(
                f"  {run.cell.label}, seed {run.seed}: epoch {epoch}/{run.config.epochs}{error}; "
                f"study: {self._summary()}",
                soft_wrap=True,
            )

    def finished_run(self, slot: int | None, run: Run, status: str, seconds: float | None = None) -> None:
        self.finished += 1
        self.done[run.hash] = run.config.epochs
        took = "" if seconds is None else f" ({seconds:.0f} s)"
        eta = f"; {self.eta()}" if self.enabled and self.finished < self.n_runs else ""
        self.console.print(
            f"run {self.finished}/{self.n_runs} {status}: {run.cell.label}, seed {run.seed}{took}{eta}", soft_wrap=True
        )
        self.last_line = time.perf_counter()
        if self.bars is not None:
            if slot is not None and slot in self.rows:
                self.bars.update(self.rows[slot], visible=False)
            self._update_study()


def _load(loaded: dict, run: Run) -> Any:
    if not hasattr(run.config, "dataset"):  # a trial of the user's own function loads its own data
        return None
    key = (run.config.dataset, run.config.data_dir)
    if key not in loaded:
        loaded[key] = rdata.load(run.config.dataset, data_dir=run.config.data_dir)
    return loaded[key]


# -- local ------------------------------------------------------------------------------------------
def _run_local(job: Job, todo: list[Run], loaded: dict, progress: bool, console: Any) -> None:
    with _Display(console, progress, todo, "study") as display:
        for run in todo:
            data = _load(loaded, run)
            display.started(0, run)

            def reporter(event: str, run: Run = run, **info: Any) -> None:
                if event == "epoch_start":
                    display.epoch_start(0, run, info["epoch"], info["steps"])
                elif event == "step":
                    display.step(0)
                elif event == "epoch_end":
                    display.epoch_end(0, run, info["epoch"], info["metrics"].get("test_error"))

            t0 = time.perf_counter()
            status = job.run(run, data=data, reporter=reporter)
            display.finished_run(0, run, status, time.perf_counter() - t0)


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
    """A worker: train the runs it is sent, one at a time, until it is sent None or stopped. It sends
    ``("epoch_start", epoch)`` and ``("epoch_end", epoch, test_error)`` while a run trains (the parent's
    progress display), then ``("done", status)`` (or ``("disk", error)``)."""
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

            def reporter(event: str, **info: Any) -> None:
                if event == "epoch_start":
                    conn.send(("epoch_start", info["epoch"]))
                elif event == "epoch_end":
                    conn.send(("epoch_end", info["epoch"], info["metrics"].get("test_error")))

            try:
                conn.send(("done", job.run(run, data=data, reporter=reporter)))
            except DiskError as e:  # the disk, not the run: the parent stops the study with this message
                conn.send(("disk", e))
                return
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return


class _Worker:
    def __init__(self, ctx: Any, job: Job) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker_main, args=(child, job, os.getpid()), daemon=True, name="rectlab-worker"
        )
        self.process.start()
        child.close()
        self.run: Run | None = None

    def send(self, run: Run) -> None:
        self.run = run
        self.conn.send(run)

    def receive(self) -> tuple[Any, ...] | None:
        """The worker's next message (``("epoch_start", ...)``, ``("epoch_end", ...)``, ``("done", status)`` or
        ``("disk", error)`` when a full or read-only disk stopped it), or None when the process died."""
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
        with _Display(console, progress, todo, f"study ({len(pool)} runs at a time)") as display:
            while queue or any(w.run is not None for w in pool):
                for i, w in enumerate(pool):
                    if w.run is None and queue:
                        next_run = queue.pop(0)
                        w.send(next_run)
                        display.started(i, next_run)
                busy = [w for w in pool if w.run is not None]
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for i, w in enumerate(pool):
                    if w.run is None or (w.conn not in ready and w.process.sentinel not in ready):
                        continue
                    run, message = w.run, w.receive()
                    if message is not None and message[0] == "epoch_start":
                        display.epoch_start(i, run, message[1])
                        continue
                    if message is not None and message[0] == "epoch_end":
                        display.epoch_end(i, run, message[1], message[2])
                        continue
                    w.run = None
                    if message is not None and message[0] == "disk":
                        raise message[1]
                    if message is None:
                        _died(job, run, w.process.exitcode)
                        status = "failed (worker died)"
                        pool[i] = _Worker(ctx, job)
                    else:
                        status = message[1]
                    display.finished_run(i, run, status)
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
                _finish(
                    job,
                    w.run,
                    "interrupted",
                    "interrupted; its worker did not stop within 15 s and was "
                    "killed; re-run the study to resume from the last finished epoch",
                )


# -- ray ----------------------------------------------------------------------------------------------
def _ray_task(job: Job, run: Run) -> str:
    return job.run(run)


def _uses_cuda(todo: list[Run]) -> bool:
    devices = {r.config.device for r in todo}
    return any(d.startswith("cuda") for d in devices) or ("auto" in devices and torch.cuda.is_available())


def _run_ray(
    job: Job,
    todo: list[Run],
    workers: int,
    address: str | None,
    gpus_per_run: float | None,
    progress: bool,
    console: Any,
) -> None:
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
            raise UnavailableError(
                f"cannot reach the Ray cluster at --address {address} ({first}); start it (ray "
                "start --head), check the address, or leave --address out to start a local "
                "Ray"
            ) from None
    if gpus_per_run is None:
        gpus_per_run = 1.0 / workers if _uses_cuda(todo) else 0.0
    remote = ray.remote(num_cpus=job.threads, num_gpus=gpus_per_run, max_retries=0)(_ray_task)
    refs = {remote.remote(job, run): run for run in todo}
    try:
        with _Display(console, progress, todo, "study (ray)") as display:
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
                    display.finished_run(None, run, status)
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref)  # a running task gets KeyboardInterrupt: its run is marked interrupted
        ray.wait(list(refs), num_returns=len(refs), timeout=60)
        raise
    finally:
        if started:
            ray.shutdown()
