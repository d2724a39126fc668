"""Fault injection: every way a study directory can be damaged ends with the rows of an uninterrupted run or
with one line that names the file and the fix, and nothing is deleted.

Cases: a database older than its checkpoints (restored from a backup, or edited), other numerics on resume
(``--threads``), damaged and truncated checkpoints, an empty or another program's database, a full disk
(simulated by a failing write), a read-only report, a process killed while it writes the report, a function
study's damaged checkpoint, and the command line's one-line errors.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
import torch

import own_functions
import rectlab
from rectlab.cli.main import main
from rectlab.errors import DiskError, InputError
from rectlab.report import collect, write_report
from rectlab.report.tables import runs_sentences
from rectlab.study import NumericsChanged, Store, StoreError, StudyLock, parse_spec, run_study
from study_helpers import rows, tiny_spec

SPEC = tiny_spec(("relu",), seeds=2, epochs=3, name="faults")


class Killed(BaseException):
    """Stands for SIGKILL at a chosen instruction (tests/test_crash.py sends real ones)."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted study: 2 runs x 3 epochs."""
    out = tmp_path_factory.mktemp("reference")
    run_study(parse_spec(SPEC), out, progress=False)
    return out


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(out: Path) -> dict[str, str]:
    """Every file under ``out`` but the lock and the database's journal, with its SHA-256."""
    return {
        str(p.relative_to(out)): digest(p)
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith(".rectlab.lock") and not p.name.endswith(("-wal", "-shm"))
    }


def kill_at_commit(monkeypatch, n: int, after: bool = False) -> None:
    """``Killed`` at the ``n``-th epoch commit of this process: before it, or after it and before the rename."""
    commit = Store.commit_epoch
    calls = {"n": 0}

    def crashing(self, run_hash, metrics, **kwargs):
        calls["n"] += 1
        if calls["n"] == n and not after:
            raise Killed
        commit(self, run_hash, metrics, **kwargs)
        if calls["n"] == n:
            raise Killed

    monkeypatch.setattr(Store, "commit_epoch", crashing)


def interrupted_study(tmp_path: Path, monkeypatch, commits: int) -> Path:
    """A study killed just before its ``commits + 1``-th epoch commit (the first run at epoch ``commits``)."""
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        kill_at_commit(m, commits + 1)
        with pytest.raises(Killed):
            run_study(parse_spec(SPEC), out, progress=False)
    return out


def first_run_dir(out: Path) -> Path:
    run = Store(out / "results.db", readonly=True).runs()[0]
    return out / "runs" / run["hash"]


# -- a database older than its checkpoints ------------------------------------------------------------------
def test_a_restored_older_database_resumes_to_the_uninterrupted_rows(reference, tmp_path, monkeypatch) -> None:
    out = interrupted_study(tmp_path, monkeypatch, commits=1)  # the first run has epoch 1 committed
    backup = tmp_path / "backup.db"
    shutil.copy(out / "results.db", backup)
    run_study(parse_spec(SPEC), out, progress=False)  # finishes: checkpoint.pt now holds epoch 3
    assert rows(out) == rows(reference)
    for journal in ("results.db-wal", "results.db-shm"):
        assert not (out / journal).exists()  # every connection closed: the database is the one file
    shutil.copy(backup, out / "results.db")  # "restore a backup": run 1 at epoch 1, run 2 not started
    run_study(parse_spec(SPEC), out, progress=False)
    assert rows(out) == rows(reference)
    for run_dir in (out / "runs").iterdir():
        assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "checkpoint.pt.stale", "metrics.csv"]
        assert torch.load(run_dir / "checkpoint.pt.stale", weights_only=False)["epoch"] == 3
    results = collect(out)
    first = f"runs/{first_run_dir(out).name}/checkpoint.pt.stale"
    assert len(results.set_aside) == 2 and first in [item["path"] for item in results.set_aside]
    assert any("newer than the database (epoch 1)" in line and first in line for line in runs_sentences(results))
    assert any("holds no finished epoch" in line for line in runs_sentences(results))


def test_a_run_set_back_in_the_database_is_trained_again_not_trusted(reference, tmp_path) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    run = Store(out / "results.db").runs()[0]
    with sqlite3.connect(out / "results.db") as db:  # what restoring an older results.db looks like to one run
        db.execute("UPDATE runs SET status = 'running', checkpoint_epoch = 1 WHERE hash = ?", (run["hash"],))
        db.execute("DELETE FROM epochs WHERE hash = ? AND epoch > 1", (run["hash"],))
    run_study(parse_spec(SPEC), out, progress=False)
    assert rows(out) == rows(reference)
    assert (out / "runs" / run["hash"] / "checkpoint.pt.stale").is_file()


def test_a_database_of_an_older_rectlab_resumes_by_the_epoch_its_checkpoint_holds(
    reference, tmp_path, monkeypatch
) -> None:
    out = interrupted_study(tmp_path, monkeypatch, commits=2)  # first run at epoch 2
    with sqlite3.connect(out / "results.db") as db:  # as schema version 2 wrote it: no checksums, no numerics
        db.execute("ALTER TABLE epochs DROP COLUMN checkpoint_sha256")
        db.execute("DROP TABLE meta")
        db.execute("DROP TABLE set_aside")
        db.execute("PRAGMA application_id = 0")
        db.execute("PRAGMA user_version = 2")
    run_study(parse_spec(SPEC), out, progress=False)
    assert rows(out) == rows(reference)
    assert collect(out).set_aside == []  # resumed from its checkpoint: nothing set aside


# -- other numerics on resume ---------------------------------------------------------------------------
def test_resuming_with_other_threads_is_refused_naming_both_values(reference, tmp_path, monkeypatch) -> None:
    out = interrupted_study(tmp_path, monkeypatch, commits=2)
    assert Store(out / "results.db").numerics()["threads"] == 1
    before = files(out)
    with pytest.raises(NumericsChanged, match=r"threads 1 -> 2.*--threads 1.*--allow-numerics-change"):
        run_study(parse_spec(SPEC), out, threads=2, progress=False)
    assert files(out) == before  # nothing trained, nothing written
    run_study(parse_spec(SPEC), out, threads=1, progress=False)
    assert rows(out) == rows(reference)


def test_other_numerics_can_be_accepted_explicitly(tmp_path, monkeypatch) -> None:
    out = interrupted_study(tmp_path, monkeypatch, commits=2)
    with sqlite3.connect(out / "results.db") as db:  # as if trained with another torch
        db.execute("UPDATE meta SET value = json_set(value, '$.torch', '1.0') WHERE key = 'numerics'")
    with pytest.raises(NumericsChanged, match=r"torch '1.0' -> '.+'\).*pass --allow-numerics-change"):
        run_study(parse_spec(SPEC), out, progress=False)
    run_study(parse_spec(SPEC), out, progress=False, allow_numerics_change=True)
    assert Store(out / "results.db").numerics()["torch"] == torch.__version__
    assert {r["status"] for r in Store(out / "results.db").runs()} == {"done"}


# -- damaged checkpoints ----------------------------------------------------------------------------------
def _flip_random_bytes(data: bytearray) -> None:
    for at in (0.4, 0.6):
        start = int(len(data) * at)
        data[start : start + 64] = bytes((b + 97) % 256 for b in data[start : start + 64])


def _flip_low_bits(data: bytearray) -> None:
    step = max(1, len(data) // 256)
    for i in range(0, len(data), step)[:256]:
        data[i] ^= 1


@pytest.mark.parametrize("damage", ["random bytes", "low bits", "truncated", "empty"])
def test_a_damaged_checkpoint_is_set_aside_and_the_run_trained_again(reference, tmp_path, monkeypatch, damage) -> None:
    out = interrupted_study(tmp_path, monkeypatch, commits=2)  # first run: epoch 2 committed, checkpoint.pt
    path = first_run_dir(out) / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    if damage == "random bytes":
        _flip_random_bytes(data)
    elif damage == "low bits":
        _flip_low_bits(data)
    else:
        data = data[: len(data) // 2 if damage == "truncated" else 0]
    path.write_bytes(bytes(data))
    run_study(parse_spec(SPEC), out, progress=False)
    assert rows(out) == rows(reference)
    assert {r["status"] for r in Store(out / "results.db").runs()} == {"done"}
    aside = path.with_name("checkpoint.pt.damaged")
    assert aside.read_bytes() == bytes(data)  # kept as it was
    reasons = [item["reason"] for item in collect(out).set_aside]
    assert len(reasons) == 1 and reasons[0].startswith("checkpoint.pt ")


def test_a_damaged_checkpoint_committed_but_not_renamed_is_set_aside(reference, tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        kill_at_commit(m, 2, after=True)  # epoch 2 committed, checkpoint-2.pt not yet renamed
        with pytest.raises(Killed):
            run_study(parse_spec(SPEC), out, progress=False)
    pending = first_run_dir(out) / "checkpoint-2.pt"
    pending.write_bytes(pending.read_bytes()[:1000])
    run_study(parse_spec(SPEC), out, progress=False)
    assert rows(out) == rows(reference)
    assert sorted(p.name for p in pending.parent.iterdir()) == [
        "checkpoint-2.pt.damaged",
        "checkpoint.pt",
        "checkpoint.pt.stale",
        "metrics.csv",
    ]


def test_a_function_studys_damaged_checkpoint_is_set_aside_too(tmp_path, monkeypatch) -> None:
    grid, params = {"activation": ["relu"]}, {"epochs": 3}
    reference = rectlab.Study(tmp_path / "ref", grid=grid, seeds=1, params=params, device="cpu")
    reference.run(own_functions.tiny, progress=False)
    study = rectlab.Study(tmp_path / "out", grid=grid, seeds=1, params=params, device="cpu")
    with monkeypatch.context() as m:
        m.setenv("OWN_CRASH_AFTER", "3")  # epochs 1-2 saved, then a crash
        study.run(own_functions.tiny, progress=False)
    path = first_run_dir(tmp_path / "out") / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:-100])
    study.run(own_functions.tiny, retry_failed=True, progress=False)

    def function_rows(out: Path) -> list:
        return [
            [{k: v for k, v in e.items() if k != "seconds"} for e in r["epochs"]]
            for r in Store(out / "results.db").runs()
        ]

    assert function_rows(tmp_path / "out") == function_rows(tmp_path / "ref")
    assert path.with_name("checkpoint.pt.damaged").is_file()


# -- empty and foreign databases ---------------------------------------------------------------------------
def test_an_empty_database_beside_checkpoints_is_refused_and_nothing_is_touched(reference, tmp_path) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    (out / "results.db").write_bytes(b"")
    before = files(out)
    with pytest.raises(
        StoreError,
        match=r"results.db is empty \(0 bytes\) while .*runs holds checkpoints of 2 "
        r"run\(s\).*Restore results.db from a backup",
    ):
        run_study(parse_spec(SPEC), out, progress=False)
    with pytest.raises(StoreError, match=r"is empty \(0 bytes\): no study was recorded"):
        collect(out)
    assert files(out) == before


def test_an_empty_database_without_checkpoints_is_a_new_study(reference, tmp_path) -> None:
    (tmp_path / "results.db").write_bytes(b"")  # a process killed as it created the file
    run_study(parse_spec(SPEC), tmp_path, progress=False)
    assert rows(tmp_path) == rows(reference)


def test_another_programs_database_is_refused_and_never_written(reference, tmp_path) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference / "runs", out / "runs")
    with sqlite3.connect(out / "results.db") as db:
        db.execute("CREATE TABLE users (name TEXT)")
        db.execute("INSERT INTO users VALUES ('ada')")
    db_bytes = digest(out / "results.db")
    before = files(out)
    for attempt in (
        lambda: run_study(parse_spec(SPEC), out, progress=False),
        lambda: collect(out),
        lambda: main(["report", str(out)]),
        lambda: main(["export", str(out), "--csv"]),
    ):
        try:
            assert attempt() == 2
        except StoreError as e:
            assert "SQLite database of another program (its tables: users)" in str(e)
    assert digest(out / "results.db") == db_bytes and files(out) == before
    assert not (out / "results.db-wal").exists() and not (out / "report.md").exists()


def test_report_and_export_open_the_database_read_only(reference, tmp_path) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    with sqlite3.connect(out / "results.db") as db:  # as an older rectlab left it: no application id
        db.execute("PRAGMA application_id = 0")
        db.execute("PRAGMA user_version = 2")
        db.execute("PRAGMA journal_mode = DELETE")
    before = digest(out / "results.db")
    collect(out)
    from rectlab.report import to_frame

    assert len(to_frame(out)) == 2
    assert digest(out / "results.db") == before


# -- a full or read-only disk -------------------------------------------------------------------------------
def _disk_full_after(monkeypatch, n: int) -> None:
    """The ``n``-th checkpoint write gets ENOSPC halfway, as ``torch.save`` does on a full disk."""
    save = torch.save
    calls = {"n": 0}

    def full(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full)


def test_a_full_disk_says_so_keeps_the_committed_epochs_and_leaves_no_temporary(
    reference, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        _disk_full_after(m, 3)  # epoch 3 of the first run
        with pytest.raises(DiskError, match="no space left on the device; free some space") as caught:
            run_study(parse_spec(SPEC), out, progress=False)
    message = str(caught.value)
    assert "corrupt" not in message and "mv " not in message and "delete" not in message
    assert not list(out.rglob("*.tmp.*"))
    (run,) = Store(out / "results.db").runs()
    assert run["status"] == "interrupted" and [e["epoch"] for e in run["epochs"]] == [1, 2]
    run_study(parse_spec(SPEC), out, progress=False)  # space freed: resumes from epoch 2
    assert rows(out) == rows(reference)


def test_a_full_disk_at_the_commit_is_not_called_a_corrupt_database(reference, tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    commit = Store.commit_epoch
    calls = {"n": 0}

    def full(self, run_hash, metrics, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            with self._connect():
                raise sqlite3.OperationalError("database or disk is full")
        commit(self, run_hash, metrics, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(Store, "commit_epoch", full)
        with pytest.raises(DiskError, match=r"cannot write .*results.db: no space left on the device") as caught:
            run_study(parse_spec(SPEC), out, progress=False)
    assert "not a readable" not in str(caught.value) and caught.value.errno == errno.ENOSPC
    assert sorted(p.name for p in first_run_dir(out).iterdir()) == ["checkpoint.pt", "metrics.csv"]
    run_study(parse_spec(SPEC), out, progress=False)
    assert rows(out) == rows(reference)


def test_a_full_disk_does_not_break_the_lock(tmp_path, monkeypatch) -> None:
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.pwrite", full)
    with StudyLock(tmp_path):  # the owner line is not written; the lock holds all the same
        pass


def test_a_read_only_report_folder_says_so(reference, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference, out)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("rectlab.files.os.replace", read_only)
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert "file system is read-only" in err and "Traceback" not in err
    assert not list(out.rglob("*.tmp.*"))


# -- a kill while the report is written ------------------------------------------------------------------------
def test_a_kill_while_writing_the_report_leaves_the_old_files_whole(reference, tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    write_report(out)
    pages = {name: digest(out / name) for name in ("report.md", "report.html")}
    from rectlab.report import markup

    html = markup.Document.html
    monkeypatch.setattr(markup.Document, "html", lambda self: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):  # killed while the page is composed: neither page is replaced
        write_report(out)
    assert {name: digest(out / name) for name in pages} == pages
    monkeypatch.setattr(markup.Document, "html", html)
    before = files(out)
    import matplotlib.figure

    savefig = matplotlib.figure.Figure.savefig

    def half(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise Killed

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half)
    with pytest.raises(Killed):
        write_report(out)
    assert files(out) == before  # report.md, report.html and every plot as they were; no temporary left
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    (out / "report.md.tmp.999999999").write_text("left by a killed process")
    write_report(out)
    assert not list(out.rglob("*.tmp.*"))
    assert all(p.stat().st_size > 0 for p in out.rglob("*") if p.is_file() and p.suffix in (".png", ".md", ".html"))


# -- one-line errors of the command line ---------------------------------------------------------------------------
def _one_line(capsys, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("rectlab: error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_export_to_a_folder_or_under_a_file_is_one_line(reference, tmp_path, capsys) -> None:
    assert main(["export", str(reference), "--csv", str(tmp_path)]) == 2
    _one_line(capsys, "is a folder; pass the file to write")
    (tmp_path / "file").write_text("x")
    assert main(["export", str(reference), "--csv", str(tmp_path / "file" / "out.csv")]) == 2
    _one_line(capsys, "is a file, not a folder")
    assert (tmp_path / "file").read_text() == "x"


def test_a_garbled_spec_or_epoch_row_names_the_database(reference, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    with sqlite3.connect(out / "results.db") as db:
        db.execute('UPDATE epochs SET metrics = \'{"epoch": 1, "test_err\' WHERE epoch = 2')
    assert main(["report", str(out)]) == 2
    _one_line(capsys, str(out / "results.db"), "the row of epoch 2 of run", "restore results.db from a backup")
    with sqlite3.connect(out / "results.db") as db:
        db.execute("UPDATE studies SET spec = '{\"study\": {'")
    assert main(["report", str(out)]) == 2
    _one_line(capsys, str(out / "results.db"), "the recorded study spec is damaged")


def test_a_lock_that_is_a_directory_and_an_empty_out_are_one_line(tmp_path, capsys, monkeypatch) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    (tmp_path / "out" / ".rectlab.lock").mkdir(parents=True)
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    _one_line(capsys, ".rectlab.lock is a directory", "move it aside")
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(spec), "--out", "", "--no-progress"]) == 2
    _one_line(capsys, "--out is empty")
    with pytest.raises(InputError, match=r"the study directory \(--out\) is empty"):
        run_study(parse_spec(SPEC), "", progress=False)
    assert not (tmp_path / "results.db").exists() and not (tmp_path / "runs").exists()


def test_an_unreachable_ray_address_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    ray = pytest.importorskip("ray")

    def unreachable(*args, **kwargs):
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")

    monkeypatch.setattr(ray, "init", unreachable)
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    argv = [
        "run",
        str(spec),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
        "--executor",
        "ray",
        "--address",
        "10.0.0.1:6379",
    ]
    assert main(argv) == 2
    _one_line(capsys, "cannot reach the Ray cluster at --address 10.0.0.1:6379")


def test_a_bug_keeps_its_traceback(reference, monkeypatch) -> None:
    def bug(*args, **kwargs):
        raise ValueError("a bug in rectlab")

    monkeypatch.setattr("rectlab.cli.report.collect", bug)
    with pytest.raises(ValueError, match="a bug in rectlab"):
        main(["report", str(reference)])
