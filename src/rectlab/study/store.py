"""SQLite result store: ``results.db`` in the study directory.

One row per run with its full resolved config and hash, status, versions and device; one row per
epoch. Writes are small transactions in WAL mode so several worker processes can share the file.

Exactly-once epochs: a run's epoch row and the epoch of the checkpoint it resumes from
(``runs.checkpoint_epoch``) are written in one transaction (:meth:`Store.commit_epoch`), after the
checkpoint file itself is on disk. The database is the truth: a process killed at any instruction leaves
either the old state or the new one (see :class:`rectlab.study.runner.StoreCheckpoints`).

Statuses: ``running``, ``done``, ``failed`` (an exception: a bug, out of memory), ``diverged`` (the
training loss became NaN/inf: an outcome, with ``extras["diverged"] = {"epoch", "step", "loss"}``) and
``interrupted`` (Ctrl-C; resumed by the next invocation).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import RectlabError

__all__ = ["STATUSES", "RunRecord", "Store", "StoreError"]

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    spec_hash TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    hash TEXT PRIMARY KEY,
    study TEXT NOT NULL,
    cell TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL,
    finished REAL,
    versions TEXT,
    device TEXT,
    extras TEXT,
    error TEXT,
    checkpoint_epoch INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS epochs (
    hash TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (hash, epoch)
);
"""
# Columns added after version 1 (ALTER TABLE on an older results.db).
_ADDED_COLUMNS = {("studies", "spec_hash"): "TEXT", ("runs", "checkpoint_epoch"): "INTEGER NOT NULL DEFAULT 0"}

STATUSES = ("pending", "running", "done", "failed", "diverged", "interrupted")


class StoreError(RectlabError, RuntimeError):
    """``results.db`` cannot be read or written; the message says what to do."""


class RunRecord(dict[str, Any]):
    """A run row as a dict: hash, study, cell (dict), seed, config (dict), status, versions, extras, epochs."""


class Store:
    """Results database of one study directory.

    Args:
        path: the ``results.db`` file (created with its parent directory).

    Raises:
        StoreError: the file is not a readable SQLite database (corrupt, truncated, not a results.db).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the study directory {self.path.parent}: {e.strerror or e}") from None
        with self._connect() as db:
            if self.path.stat().st_size > 0:
                check = db.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            db.executescript(SCHEMA)
            for (table, column), decl in _ADDED_COLUMNS.items():
                columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=60)
        except sqlite3.Error as e:
            raise self._error(e) from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        except sqlite3.DatabaseError as e:
            raise self._error(e) from None
        finally:
            db.close()

    def _error(self, e: Exception) -> StoreError:
        if isinstance(e, sqlite3.OperationalError) and ("readonly" in str(e) or "unable to open" in str(e)):
            return StoreError(f"cannot write {self.path} ({e}); make the study directory writable or use another "
                              "--out")
        return StoreError(
            f"{self.path} is not a readable rectlab results database ({e}). Move it aside "
            f"(mv {self.path} {self.path}.corrupt) and re-run the study to retrain its runs, or restore a backup."
        )

    # -- the spec -------------------------------------------------------------------------------
    def save_spec(self, name: str, spec: dict[str, Any], spec_hash: str | None = None) -> None:
        """Record the study's spec (a study directory holds one: this replaces any earlier one)."""
        with self._connect() as db:
            db.execute("DELETE FROM studies")
            db.execute("INSERT INTO studies(name, spec, created, spec_hash) VALUES (?, ?, ?, ?)",
                       (name, json.dumps(spec, default=str), time.time(), spec_hash))

    def spec(self) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT spec FROM studies ORDER BY created DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    # -- runs ------------------------------------------------------------------------------------
    def status(self, run_hash: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT status FROM runs WHERE hash = ?", (run_hash,)).fetchone()
        return row[0] if row else None

    def statuses(self) -> dict[str, str]:
        """``{run hash: status}`` for every run (one query, for deciding what to run)."""
        with self._connect() as db:
            return dict(db.execute("SELECT hash, status FROM runs").fetchall())

    def start_run(self, run_hash: str, study: str, cell: dict, seed: int, config: dict, versions: dict) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs(hash, study, cell, seed, config, status, started, versions, device) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?) "
                "ON CONFLICT(hash) DO UPDATE SET status='running', started=excluded.started, error=NULL, "
                "versions=excluded.versions, device=excluded.device",
                (run_hash, study, json.dumps(cell, sort_keys=True), seed, json.dumps(config, default=str),
                 time.time(), json.dumps(versions), versions.get("device")),
            )

    def add_epoch(self, run_hash: str, metrics: dict[str, Any]) -> None:
        """Record an epoch row of a run trained without checkpoints (see :meth:`commit_epoch` otherwise)."""
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO epochs(hash, epoch, metrics) VALUES (?, ?, ?)",
                (run_hash, int(metrics["epoch"]), json.dumps(metrics)),
            )

    def commit_epoch(self, run_hash: str, metrics: dict[str, Any], earlier: Sequence[dict[str, Any]] = ()) -> None:
        """In one transaction: the epoch row (and ``earlier`` rows not yet committed), and that epoch as the run's
        checkpoint epoch."""
        epoch = int(metrics["epoch"])
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO epochs(hash, epoch, metrics) VALUES (?, ?, ?)",
                           [(run_hash, int(row["epoch"]), json.dumps(row)) for row in [*earlier, metrics]])
            updated = db.execute("UPDATE runs SET checkpoint_epoch = ? WHERE hash = ?", (epoch, run_hash)).rowcount
            if updated != 1:
                raise sqlite3.IntegrityError(f"run {run_hash} was not started")

    def checkpoint_epoch(self, run_hash: str) -> int:
        """The last epoch committed with its checkpoint (0: none)."""
        with self._connect() as db:
            row = db.execute("SELECT checkpoint_epoch FROM runs WHERE hash = ?", (run_hash,)).fetchone()
        return int(row[0] or 0) if row else 0

    def rewind(self, run_hash: str, epoch: int) -> None:
        """Forget a run's epochs after ``epoch`` (its checkpoint is gone or it restarts from scratch)."""
        with self._connect() as db:
            db.execute("DELETE FROM epochs WHERE hash = ? AND epoch > ?", (run_hash, epoch))
            db.execute("UPDATE runs SET checkpoint_epoch = MIN(checkpoint_epoch, ?) WHERE hash = ?", (epoch, run_hash))

    def finish_run(self, run_hash: str, status: str, extras: dict | None = None, error: str | None = None,
                   device: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        with self._connect() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished = ?, extras = COALESCE(?, extras), error = ?, "
                "device = COALESCE(?, device) WHERE hash = ?",
                (status, time.time(), json.dumps(extras, default=str) if extras is not None else None, error,
                 device, run_hash),
            )

    def runs(self, status: str | None = None) -> list[RunRecord]:
        """All runs (optionally of one status) with their per-epoch metrics, in start order."""
        with self._connect() as db:
            query = "SELECT hash, study, cell, seed, config, status, versions, device, extras, error FROM runs"
            rows = db.execute(query + (" WHERE status = ?" if status else "") + " ORDER BY started",
                              (status,) if status else ()).fetchall()
            epochs: dict[str, list[dict]] = {}
            for h, _, m in db.execute("SELECT hash, epoch, metrics FROM epochs ORDER BY hash, epoch"):
                epochs.setdefault(h, []).append(json.loads(m))
        out = []
        for h, study, cell, seed, config, st, versions, device, extras, error in rows:
            out.append(RunRecord(
                hash=h, study=study, cell=json.loads(cell), seed=seed, config=json.loads(config), status=st,
                versions=json.loads(versions) if versions else {}, device=device,
                extras=json.loads(extras) if extras else {}, error=error, epochs=epochs.get(h, []),
            ))
        return out
