"""Epoch checkpoints of a study run, committed with their epoch rows and verified before they are resumed from.

After epoch e, `StoreCheckpoints.save` writes the run's state to ``checkpoint-e.pt`` (atomically,
see [atomic_save][rectlab.training.loop.atomic_save]); then one SQLite transaction inserts epoch e's row with the
file's SHA-256 and sets the run's ``checkpoint_epoch`` to e (the commit, `Store.commit_epoch`); then
``checkpoint-e.pt`` is renamed to ``checkpoint.pt``. A process killed before the commit leaves the
database at e-1 and an uncommitted ``checkpoint-e.pt`` that `StoreCheckpoints.latest` removes; killed
after it, a ``checkpoint-e.pt`` that `StoreCheckpoints.latest` renames.

Before a run resumes, `StoreCheckpoints.latest` checks that the checkpoint is the one the database
committed: same SHA-256 (a database from an older rectlab, without checksums: same epoch). One that is
newer than the database (an older ``results.db`` restored from a backup), damaged, truncated or otherwise
changed is never trusted: it is set aside (renamed ``checkpoint.pt.stale`` or ``checkpoint.pt.damaged``,
never deleted; the study's report lists it) and the run restarts from its newest consistent state, which,
as a run keeps one checkpoint, is the start. Either way the run ends with exactly the rows of an
uninterrupted run (on CPU, bit for bit).

Any code that trains through the store (the built-in study runner, or a study of user functions) gets
this by passing ``StoreCheckpoints(store, run_hash, run_dir)`` as the ``checkpoints`` of
[train_one][rectlab.training.train_one], or by calling `StoreCheckpoints.latest` and
`StoreCheckpoints.save` itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import DiskError
from ..files import sha256_file
from ..training.loop import atomic_save
from .store import Store

__all__ = ["StoreCheckpoints"]

_PENDING = re.compile(r"checkpoint-(\d+)\.pt")
_TEMPORARY = re.compile(r"checkpoint(-\d+)?\.pt\.tmp\.\d+")


class StoreCheckpoints:
    """The checkpoints of run ``run_hash`` in ``run_dir``, committed through ``store`` (the
    [Checkpoints][rectlab.training.loop.Checkpoints] of a study run).

    Args:
        store: the study's results database.
        run_hash: the run (started with `Store.start_run`).
        run_dir: its folder, ``OUT/runs/<hash>``.
    """

    def __init__(self, store: Store, run_hash: str, run_dir: Path) -> None:
        self.store, self.hash, self.run_dir = store, run_hash, Path(run_dir)
        self.final = self.run_dir / "checkpoint.pt"

    def _pending(self, epoch: int) -> Path:
        return self.run_dir / f"checkpoint-{epoch}.pt"

    def latest(self) -> Path | None:
        """The verified checkpoint to resume from, or None to start from scratch.

        Removes what a killed process left half-done (uncommitted ``checkpoint-e.pt``, temporary files),
        finishes a committed rename, sets aside a checkpoint that does not match the database and rewinds
        the database to the epoch the run resumes from (its later rows, if any, are recomputed).
        """
        epoch, sha = self.store.checkpoint(self.hash)
        if not self.run_dir.is_dir():
            self.store.rewind(self.hash, 0)
            return None
        pending = self._pending(epoch)
        if epoch and pending.exists():  # committed, not yet renamed
            problem = self._problem(pending, epoch, sha)
            if problem is None:
                os.replace(pending, self.final)
            else:
                self._set_aside(pending, *problem)
        for leftover in sorted(self.run_dir.iterdir()):
            match = _PENDING.fullmatch(leftover.name)
            if _TEMPORARY.fullmatch(leftover.name) or (match and int(match[1]) > epoch):
                leftover.unlink()  # half-written files and uncommitted epochs of a killed process
            elif match:  # an epoch the database has already passed: not this run's state
                self._set_aside(leftover, "stale", f"holds epoch {match[1]}, the database epoch {epoch}")
        if self.final.exists():
            problem = (
                ("stale", "the database holds no finished epoch of this run")
                if epoch == 0
                else self._problem(self.final, epoch, sha)
            )
            if problem is None:
                self.store.rewind(self.hash, epoch)
                return self.final
            self._set_aside(self.final, *problem)
        self.store.rewind(self.hash, 0)
        return None

    def save(
        self, epoch: int, state: dict[str, Any], row: dict[str, Any], earlier: Sequence[dict[str, Any]] = ()
    ) -> None:
        """Write ``state`` (the run after ``epoch`` epochs), then commit ``row`` with its checksum (and
        ``earlier`` rows of epochs logged since the last save, which a user's training function may write
        between checkpoints)."""
        pending = self._pending(epoch)
        digest = atomic_save(state, pending)
        try:
            if earlier:  # rows a user's training function logged between two saves
                self.store.commit_epoch(self.hash, row, earlier, checkpoint_sha256=digest)
            else:
                self.store.commit_epoch(self.hash, row, checkpoint_sha256=digest)
        except DiskError:  # not committed (the disk is full or read-only): the file is of no use
            pending.unlink(missing_ok=True)
            raise
        os.replace(pending, self.final)

    # -- verification ------------------------------------------------------------------------------
    def _problem(self, path: Path, epoch: int, sha: str | None) -> tuple[str, str] | None:
        """None when ``path`` is the checkpoint committed with ``epoch``; else (kind, what is wrong with it)."""
        try:
            if sha is not None and sha256_file(path) == sha:
                return None
        except OSError as e:
            return "damaged", f"cannot be read ({e.strerror or e})"
        state, error = _load(path, trusted=sha is None)
        if state is None:
            return "damaged", f"cannot be read: damaged or truncated ({error})"
        held = state.get("epoch") if isinstance(state, dict) else None
        if not isinstance(held, int):
            return "damaged", "holds no epoch: not a checkpoint of a rectlab run"
        if held > epoch:
            return "stale", (
                f"holds epoch {held}, newer than the database (epoch {epoch}): results.db is older "
                "than its checkpoints, e.g. restored from a backup"
            )
        if held < epoch:
            return "stale", f"holds epoch {held}, older than the database (epoch {epoch})"
        if sha is not None:
            return "damaged", f"holds epoch {held} but its bytes do not match the checksum committed with it"
        return None  # committed by an older rectlab (no checksum): the epochs agree

    def _set_aside(self, path: Path, kind: str, reason: str) -> Path:
        """Rename ``path`` out of the way (kept, never deleted) and record it in the database."""
        target = path.with_name(f"{path.name}.{kind}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.{kind}.{n}")
        os.replace(path, target)
        try:
            where = str(target.relative_to(self.store.path.parent))
        except ValueError:
            where = str(target)
        self.store.record_set_aside(self.hash, where, f"{path.name} {reason}")
        return target


def _load(path: Path, trusted: bool) -> tuple[Any, str]:
    """The checkpoint's content, or None and why not. A file that failed its checksum is read as tensors and
    plain values only (``weights_only``): nothing in it is executed."""
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted), ""
    except Exception as e:  # a damaged zip, a truncated pickle, not a torch file: all mean "unreadable"
        return None, (str(e).splitlines() or [type(e).__name__])[0][:160]
