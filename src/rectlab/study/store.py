"""SQLite result store: ``results.db`` in the study directory.

One row per run with its full resolved config and hash, status, versions and device; one row per
epoch. Writes are small transactions in WAL mode so several worker processes can share the file,
and an interrupted study keeps every epoch it finished.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Store", "RunRecord"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created REAL NOT NULL
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
    error TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    hash TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (hash, epoch)
);
"""

STATUSES = ("pending", "running", "done", "failed", "interrupted")


class RunRecord(dict):
    """A run row as a dict: hash, study, cell (dict), seed, config (dict), status, versions, extras, epochs."""


class Store:
    """Results database of one study directory.

    Args:
        path: the ``results.db`` file (created with its parent directory).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        except sqlite3.DatabaseError as e:
            raise sqlite3.DatabaseError(f"{self.path}: {e} (is it a rectlab results.db?)") from None
        finally:
            db.close()

    def save_spec(self, name: str, spec: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO studies(name, spec, created) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec",
                (name, json.dumps(spec, default=str), time.time()),
            )

    def spec(self) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT spec FROM studies ORDER BY created DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def status(self, run_hash: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT status FROM runs WHERE hash = ?", (run_hash,)).fetchone()
        return row[0] if row else None

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
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO epochs(hash, epoch, metrics) VALUES (?, ?, ?)",
                (run_hash, int(metrics["epoch"]), json.dumps(metrics)),
            )

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
