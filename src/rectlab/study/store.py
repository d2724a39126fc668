"""SQLite result store: ``results.db`` in the study directory.

One row per run with its full resolved config and hash, status, versions and device; one row per
epoch. Writes are small transactions in WAL mode so several worker processes can share the file.

Exactly-once epochs: a run's epoch row, the SHA-256 of the checkpoint written after that epoch and the
epoch of the checkpoint it resumes from (``runs.checkpoint_epoch``) are written in one transaction
(`Store.commit_epoch`), after the checkpoint file itself is on disk. The database is the truth: a
process killed at any instruction leaves either the old state or the new one, and a checkpoint that does
not match what the database committed is set aside, never trusted (see
[StoreCheckpoints][rectlab.study.checkpoints.StoreCheckpoints]).

Statuses: ``running``, ``done``, ``failed`` (an exception: a bug, out of memory), ``diverged`` (the
training loss became NaN/inf: an outcome, with ``extras["diverged"] = {"epoch", "step", "loss"}``) and
``interrupted`` (Ctrl-C; resumed by the next invocation).

A results.db is recognised by its SQLite application id (``APPLICATION_ID``) or, written by an older
rectlab, by its tables. Any other file is refused and left untouched, and so is an empty (0-byte)
results.db beside checkpoints of finished epochs. ``Store(path, readonly=True)`` (reports, exports) opens
the file read-only and never writes to it.
"""

from __future__ import annotations

import errno
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import DiskError, RectlabError

__all__ = ["APPLICATION_ID", "STATUSES", "RunRecord", "Store", "StoreEmpty", "StoreError"]

SCHEMA_VERSION = 3
APPLICATION_ID = 0x72656374  # "rect": PRAGMA application_id of every results.db rectlab creates
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
    checkpoint_sha256 TEXT,
    PRIMARY KEY (hash, epoch)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS set_aside (
    path TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    reason TEXT NOT NULL,
    time REAL NOT NULL
);
"""
# Columns added after version 1 (ALTER TABLE on an older results.db).
_ADDED_COLUMNS = {
    ("studies", "spec_hash"): "TEXT",
    ("runs", "checkpoint_epoch"): "INTEGER NOT NULL DEFAULT 0",
    ("epochs", "checkpoint_sha256"): "TEXT",
}
_TABLES = {"studies", "runs", "epochs"}  # what every results.db, of any version, holds
_OUR_TABLES = _TABLES | {"meta", "set_aside"}

STATUSES = ("pending", "running", "done", "failed", "diverged", "interrupted")


class StoreError(RectlabError, RuntimeError):
    """``results.db`` cannot be read or written; the message says what to do."""


class StoreEmpty(StoreError):
    """``results.db`` holds no study: an empty file, or an SQLite file without tables (one being created)."""


class RunRecord(dict[str, Any]):
    """A run row as a dict: hash, study, cell (dict), seed, config (dict), status, versions, extras, epochs."""


def _checkpoint_files(study_dir: Path) -> list[Path]:
    return sorted(study_dir.glob("runs/*/checkpoint*.pt"))


class Store:
    """Results database of one study directory.

    Args:
        path: the ``results.db`` file (created with its parent directory unless ``readonly``).
        readonly: open an existing database for reading only (reports, exports): nothing is created,
            migrated or written, not even the journal mode.

    Raises:
        StoreError: the file is not a readable rectlab results database (corrupt, truncated, another
            program's SQLite file, empty beside checkpoints; with ``readonly``, missing).
        StoreEmpty: with ``readonly``, the file holds no study (empty, or created but given no tables yet).
        DiskError: the study directory or the database cannot be written (full, read-only, no permission).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._columns: dict[str, set[str]] = {}
        if readonly:
            self._open_readonly()
            self._check()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DiskError(
                f"cannot create the study directory {self.path.parent}: {e.strerror or e}; pass a writable --out",
                e.errno,
                str(self.path.parent),
            ) from None
        existing = self.path.is_file() and self.path.stat().st_size > 0 and self._identify()
        if not existing:
            self.refuse_if_emptied(self.path)
        with self._connect() as db:
            if existing:
                self._check(db)
            db.executescript(f"BEGIN; {SCHEMA} COMMIT;")  # one transaction: a reader sees all tables or none
            for (table, column), decl in _ADDED_COLUMNS.items():
                columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- opening -----------------------------------------------------------------------------------
    @staticmethod
    def refuse_if_emptied(path: str | Path) -> None:
        """Refuse an empty ``results.db`` (0 bytes, or no tables) beside checkpoints of its runs.

        An empty database would make a new study that retrains, on top of them, runs whose epochs are
        finished; the checkpoints say the database was emptied or replaced. Without checkpoints it is a study
        that never started (or a process killed as it created the file) and is simply created.

        Raises:
            StoreError: ``path`` holds no study and ``runs/*/checkpoint*.pt`` exist beside it.
        """
        path = Path(path)
        if not path.is_file():  # moved aside (a corrupt one): a new study, whose runs set their checkpoints aside
            return
        found = _checkpoint_files(path.parent)
        if found:
            runs = len({p.parent for p in found})
            size = path.stat().st_size
            what = "is empty (0 bytes)" if size == 0 else "holds no study (an SQLite file without tables)"
            raise StoreError(
                f"{path} {what} while {path.parent / 'runs'} holds checkpoints of {runs} run(s): the database was "
                f"emptied or replaced, and starting over would retrain finished work. Restore results.db from a "
                f"backup, or move the folder runs/ aside to start the study over"
            )

    def _open_readonly(self) -> None:
        if not self.path.is_file():
            raise StoreError(f"{self.path} not found: pass the --out folder of a rectlab study")
        if self.path.stat().st_size == 0:
            raise StoreEmpty(
                f"{self.path} is empty (0 bytes): no study was recorded in it (one that never started, "
                "or a database that was emptied: restore it from a backup)"
            )
        if not self._identify():
            raise StoreEmpty(
                f"{self.path} holds no study yet (an SQLite file without tables: one that never "
                "started, or a database that was emptied: restore it from a backup)"
            )

    def _uri(self, immutable: bool = False) -> str:
        return f"file:{quote(str(self.path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")

    def _identify(self) -> bool:
        """Make sure the file is a rectlab results database, reading it without writing anything.

        Only SQLite reads the file: closing a descriptor of it that this process opened itself would drop the
        POSIX locks of any SQLite connection to it in this process (and another process could then delete
        the WAL under that connection).

        Returns:
            True for a rectlab database, False for an SQLite file without tables (being created).

        Raises:
            StoreError: not an SQLite file, or one with tables of another program.
        """
        # An immutable connection creates no -journal, -wal or -shm file beside another program's database, but
        # sees only the main file: a WAL's tables and application id (a new rectlab database) need a read-only one.
        try:
            app_id, names = self._peek(immutable=True)
        except StoreError:
            app_id, names = self._peek(immutable=False)
        if app_id != APPLICATION_ID and not names:
            app_id, names = self._peek(immutable=False)
        if app_id == APPLICATION_ID:
            return True
        if not names:
            return False
        if not names <= _OUR_TABLES:  # an older rectlab's has our tables (no application id)
            shown = ", ".join(sorted(names))
            raise StoreError(
                f"{self.path} is an SQLite database of another program (its tables: {shown}), not a "
                "rectlab results database; rectlab leaves it untouched: use another --out (or move "
                "that file elsewhere)"
            )
        return True

    def _peek(self, immutable: bool) -> tuple[int, set[str]]:
        """The file's application id and table names."""
        try:
            db = sqlite3.connect(self._uri(immutable), uri=True, timeout=60)
            try:
                app_id = db.execute("PRAGMA application_id").fetchone()[0]
                names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                return int(app_id), names
            finally:
                db.close()
        except sqlite3.Error as e:
            raise self._error(e) from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if self.readonly:
                db = sqlite3.connect(self._uri(), uri=True, timeout=60)
            else:
                db = sqlite3.connect(self.path, timeout=60)
        except sqlite3.Error as e:
            raise self._error(e) from None
        try:
            if not self.readonly:
                db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        except sqlite3.Error as e:
            raise self._error(e) from None
        finally:
            db.close()

    def _check(self, db: sqlite3.Connection | None = None) -> None:
        """SQLite's quick integrity check of the whole file (a truncated or damaged one fails it)."""
        if db is None:
            with self._connect() as db:
                return self._check(db)
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check}")

    def _corrupt(self, what: str) -> StoreError:
        return StoreError(
            f"{self.path} is not a readable rectlab results database ({what}). Move it aside "
            f"(mv {self.path} {self.path}.corrupt) and re-run the study to retrain its runs (their checkpoints "
            "are set aside, not used), or restore a backup."
        )

    def _error(self, e: Exception) -> RectlabError:
        """The one-line error of an SQLite failure: disk full and read-only are not corruption."""

        message = str(e)
        if "disk is full" in message or "database or disk is full" in message:
            return DiskError(
                f"cannot write {self.path}: no space left on the device; free some space and run the "
                "same command again (everything already finished is kept)",
                errno.ENOSPC,
                str(self.path),
            )
        if "readonly" in message or "read-only" in message:
            return DiskError(
                f"cannot write {self.path}: it is read-only ({message}); make the study directory "
                "writable or use another --out (everything already finished is kept)",
                errno.EROFS,
                str(self.path),
            )
        if "unable to open" in message:
            return DiskError(
                f"cannot open {self.path} ({message}); make the study directory readable and "
                "writable, or use another --out",
                errno.EACCES,
                str(self.path),
            )
        if "database is locked" in message:
            return StoreError(
                f"{self.path} is locked by another process ({message}); wait for it to finish and "
                "run the same command again"
            )
        if "disk I/O error" in message:
            try:
                free = shutil.disk_usage(self.path.parent).free
            except OSError:
                free = -1
            if 0 <= free < 1 << 20:
                return DiskError(
                    f"cannot write {self.path}: no space left on the device ({message}); free some "
                    "space and run the same command again (everything already finished is kept)",
                    errno.ENOSPC,
                    str(self.path),
                )
            return StoreError(
                f"cannot read or write {self.path}: {message} (a failing disk or a network file "
                "system?); check the disk and run the same command again (the file was not changed "
                "by rectlab)"
            )
        if isinstance(e, sqlite3.IntegrityError):
            return StoreError(f"{self.path}: {message}")
        return self._corrupt(message)

    def _has(self, table: str, column: str | None = None) -> bool:
        """Whether this database has ``table`` (and ``column``): an older one read-only may not."""
        if table not in self._columns:
            with self._connect() as db:
                for name in _TABLES | {"meta", "set_aside"}:
                    self._columns[name] = {row[1] for row in db.execute(f"PRAGMA table_info({name})")}
        columns = self._columns[table]
        return bool(columns) and (column is None or column in columns)

    def _write(self) -> None:
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only")

    def _json(self, text: str | None, what: str) -> Any:
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as e:
            raise StoreError(f"{self.path}: {what} is damaged ({e}); restore results.db from a backup") from None

    # -- the spec ---------------------------------------------------------------------------------
    def save_spec(self, name: str, spec: dict[str, Any], spec_hash: str | None = None) -> None:
        """Record the study's spec (a study directory holds one: this replaces any earlier one)."""
        self._write()
        with self._connect() as db:
            db.execute("DELETE FROM studies")
            db.execute(
                "INSERT INTO studies(name, spec, created, spec_hash) VALUES (?, ?, ?, ?)",
                (name, json.dumps(spec, default=str), time.time(), spec_hash),
            )

    def spec(self) -> dict[str, Any] | None:
        """The recorded spec (a dict, as `save_spec` got it), or None before the first run."""
        with self._connect() as db:
            row = db.execute("SELECT spec FROM studies ORDER BY created DESC LIMIT 1").fetchone()
        spec = self._json(row[0], "the recorded study spec") if row else None
        if spec is not None and not isinstance(spec, dict):
            raise StoreError(
                f"{self.path}: the recorded study spec is damaged (not a table); restore results.db from a backup"
            )
        return spec

    # -- numerics ---------------------------------------------------------------------------------
    def numerics(self) -> dict[str, Any] | None:
        """What the study's results depend on besides its spec (threads, torch, device kind, deterministic
        flags), as `save_numerics` recorded it; None when nothing was recorded."""
        if not self._has("meta"):
            return None
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'numerics'").fetchone()
        return self._json(row[0], "the recorded numerics") if row else None

    def save_numerics(self, numerics: dict[str, Any]) -> None:
        """Record the study's numerics (see [current_numerics][rectlab.study.numerics.current_numerics])."""
        self._write()
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('numerics', ?)",
                (json.dumps(numerics, sort_keys=True),),
            )

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
        self._write()
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs(hash, study, cell, seed, config, status, started, versions, device) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?) "
                "ON CONFLICT(hash) DO UPDATE SET status='running', started=excluded.started, error=NULL, "
                "versions=excluded.versions, device=excluded.device",
                (
                    run_hash,
                    study,
                    json.dumps(cell, sort_keys=True),
                    seed,
                    json.dumps(config, default=str),
                    time.time(),
                    json.dumps(versions),
                    versions.get("device"),
                ),
            )

    def add_epoch(self, run_hash: str, metrics: dict[str, Any]) -> None:
        """Record an epoch row of a run trained without checkpoints (see `commit_epoch` otherwise)."""
        self._write()
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO epochs(hash, epoch, metrics) VALUES (?, ?, ?)",
                (run_hash, int(metrics["epoch"]), json.dumps(metrics)),
            )

    def commit_epoch(
        self,
        run_hash: str,
        metrics: dict[str, Any],
        earlier: Sequence[dict[str, Any]] = (),
        checkpoint_sha256: str | None = None,
    ) -> None:
        """In one transaction: the epoch row (and ``earlier`` rows not yet committed), the SHA-256 of the
        checkpoint written after that epoch, and that epoch as the run's checkpoint epoch (the one a resumed run
        starts from).

        Args:
            run_hash: a run already started (`start_run`).
            metrics: the epoch's row; ``metrics["epoch"]`` is the epoch (1-based).
            earlier: rows of epochs logged since the last commit (a user's training function may log epochs
                between two checkpoints); they carry no checksum.
            checkpoint_sha256: the checkpoint file's SHA-256 (64 hex digits), checked before it is resumed from.
        """
        self._write()
        epoch = int(metrics["epoch"])
        rows: list[tuple[str, int, str, str | None]] = [
            (run_hash, int(row["epoch"]), json.dumps(row), None) for row in earlier
        ]
        rows.append((run_hash, epoch, json.dumps(metrics), checkpoint_sha256))
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO epochs(hash, epoch, metrics, checkpoint_sha256) VALUES (?, ?, ?, ?)", rows
            )
            updated = db.execute("UPDATE runs SET checkpoint_epoch = ? WHERE hash = ?", (epoch, run_hash)).rowcount
            if updated != 1:
                raise sqlite3.IntegrityError(f"run {run_hash} was not started")

    def checkpoint_epoch(self, run_hash: str) -> int:
        """The last epoch committed with its checkpoint (0: none)."""
        return self.checkpoint(run_hash)[0]

    def checkpoint(self, run_hash: str) -> tuple[int, str | None]:
        """The last epoch committed with its checkpoint (0: none) and that checkpoint's SHA-256 (None when
        it was not recorded: a run committed by an older rectlab)."""
        if not self._has("runs", "checkpoint_epoch"):
            return 0, None
        sha = "e.checkpoint_sha256" if self._has("epochs", "checkpoint_sha256") else "NULL"
        with self._connect() as db:
            row = db.execute(
                f"SELECT r.checkpoint_epoch, {sha} FROM runs r LEFT JOIN epochs e ON e.hash = r.hash "
                "AND e.epoch = r.checkpoint_epoch WHERE r.hash = ?",
                (run_hash,),
            ).fetchone()
        return (int(row[0] or 0), row[1]) if row else (0, None)

    def rewind(self, run_hash: str, epoch: int) -> None:
        """Forget a run's epochs after ``epoch`` (its checkpoint is gone or it restarts from scratch)."""
        self._write()
        with self._connect() as db:
            db.execute("DELETE FROM epochs WHERE hash = ? AND epoch > ?", (run_hash, epoch))
            db.execute("UPDATE runs SET checkpoint_epoch = MIN(checkpoint_epoch, ?) WHERE hash = ?", (epoch, run_hash))

    def finish_run(
        self,
        run_hash: str,
        status: str,
        extras: dict | None = None,
        error: str | None = None,
        device: str | None = None,
    ) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        self._write()
        with self._connect() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished = ?, extras = COALESCE(?, extras), error = ?, "
                "device = COALESCE(?, device) WHERE hash = ?",
                (
                    status,
                    time.time(),
                    json.dumps(extras, default=str) if extras is not None else None,
                    error,
                    device,
                    run_hash,
                ),
            )

    # -- files set aside --------------------------------------------------------------------------
    def record_set_aside(self, run_hash: str, path: str, reason: str) -> None:
        """Note a file of run ``run_hash`` that was renamed out of the way (kept, not used), and why."""
        self._write()
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO set_aside(path, hash, reason, time) VALUES (?, ?, ?, ?)",
                (path, run_hash, reason, time.time()),
            )

    def set_aside(self) -> list[dict[str, Any]]:
        """Every file set aside: ``{"path" (relative to the study directory), "hash", "reason", "time"}``."""
        if not self._has("set_aside"):
            return []
        with self._connect() as db:
            rows = db.execute("SELECT path, hash, reason, time FROM set_aside ORDER BY time, path").fetchall()
        return [{"path": p, "hash": h, "reason": r, "time": t} for p, h, r, t in rows]

    def runs(self, status: str | None = None) -> list[RunRecord]:
        """All runs (optionally of one status) with their per-epoch metrics, in start order."""
        with self._connect() as db:
            query = "SELECT hash, study, cell, seed, config, status, versions, device, extras, error FROM runs"
            rows = db.execute(
                query + (" WHERE status = ?" if status else "") + " ORDER BY started", (status,) if status else ()
            ).fetchall()
            epochs: dict[str, list[dict]] = {}
            for h, e, m in db.execute("SELECT hash, epoch, metrics FROM epochs ORDER BY hash, epoch"):
                epochs.setdefault(h, []).append(self._json(m, f"the row of epoch {e} of run {h}"))
        out = []
        for h, study, cell, seed, config, st, versions, device, extras, error in rows:
            what = f"the record of run {h}"
            out.append(
                RunRecord(
                    hash=h,
                    study=study,
                    cell=self._json(cell, what),
                    seed=seed,
                    config=self._json(config, what),
                    status=st,
                    versions=self._json(versions, what) or {},
                    device=device,
                    extras=self._json(extras, what) or {},
                    error=error,
                    epochs=epochs.get(h, []),
                )
            )
        return out
