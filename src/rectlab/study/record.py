"""Train one run of a study and record it in the study's store, epoch by epoch (what every executor runs)."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..training import loop  # loop.train_one looked up at each run (tests replace it)
from ..training.loop import Diverged, atomic_save, resolve_device, versions
from .function import FunctionConfig
from .grid import Run
from .store import Store
from .trial import run_trial

__all__ = ["StoreCheckpoints", "execute_run"]


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
            result = loop.train_one(run.config, run_dir, data=data, callbacks=callbacks, reporter=reporter,
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
