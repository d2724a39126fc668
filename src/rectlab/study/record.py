"""Train one run of a study and record it in the study's store, epoch by epoch (what every executor runs)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from ..errors import RectlabError, disk_error
from ..training import loop  # loop.train_one looked up at each run (tests replace it)
from ..training.loop import Diverged, resolve_device, versions
from .checkpoints import StoreCheckpoints  # re-exported: what every executor commits through
from .function import FunctionConfig
from .grid import Run
from .store import Store
from .trial import run_trial

__all__ = ["StoreCheckpoints", "execute_run"]


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
    store.start_run(
        run.hash, study, run.cell.as_dict(), run.seed, run.config.to_dict(), versions(resolve_device(run.config.device))
    )
    run_dir = out_dir / "runs" / run.hash
    checkpoints = StoreCheckpoints(store, run.hash, run_dir)
    try:
        if isinstance(run.config, FunctionConfig):  # the user's own training function
            result: Any = run_trial(
                run.config, run.hash, run_dir, store, checkpoints, label=run.cell.label, reporter=reporter
            )
        else:
            result = loop.train_one(
                run.config, run_dir, data=data, callbacks=callbacks, reporter=reporter, checkpoints=checkpoints
            )
    except KeyboardInterrupt:
        store.finish_run(run.hash, "interrupted", error="interrupted by the user; re-run the study to resume")
        raise
    except OSError as e:  # a full or read-only disk is not the run's failure: stop the study, resume it later
        disk = disk_error(e, f"the files of run {run.hash} in {out_dir}")
        if disk is None:
            store.finish_run(run.hash, "failed", error=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}")
            return "failed"
        # If the database cannot be written either, the run stays "running", which the next invocation resumes
        # just the same.
        with suppress(RectlabError, OSError):
            store.finish_run(run.hash, "interrupted", error=f"stopped: {disk}")
        raise disk from None
    except Diverged as e:  # an outcome: kept, reported, not retrained
        store.finish_run(run.hash, "diverged", extras={"diverged": e.as_dict()}, error=str(e))
        return "diverged"
    except Exception as e:  # a failed run must not lose the rest of the study
        store.finish_run(run.hash, "failed", error=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}")
        return "failed"
    store.finish_run(run.hash, "done", extras=result.extras, device=result.device)
    return "done"
