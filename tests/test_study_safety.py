"""A study directory keeps its results right: one spec per directory, one process at a time, bad input
refused before the first run, corrupt databases named, epochs committed exactly once."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rectlab.study import (
    SpecError,
    Store,
    StoreError,
    StudyLock,
    StudyLocked,
    StudyMismatch,
    parse_spec,
    plan_study,
    run_study,
)
from study_helpers import CHILD_ENV, rows, tiny_spec

SPEC = tiny_spec(name="safety")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    run_study(parse_spec(SPEC), out, progress=False)
    return out


# -- one spec per study directory ----------------------------------------------------------------------
def test_other_settings_on_the_same_out_are_refused_with_what_differs(reference) -> None:
    other = parse_spec(SPEC.replace("epochs = 2", "epochs = 3").replace("seeds = 2", "seeds = 1"))
    with pytest.raises(StudyMismatch, match=r"epochs 2 -> 3; seeds \[0, 1\] -> \[0\]\); use --out NEW"):
        run_study(other, reference, progress=False)


def test_a_part_of_the_recorded_study_reruns_without_training(reference) -> None:
    before = rows(reference)
    plan = plan_study(parse_spec(SPEC.replace("seeds = 2", "seeds = [1]")), reference)
    assert plan.todo == [] and plan.stored.seeds == (0, 1)
    run_study(parse_spec(SPEC.replace("seeds = 2", "seeds = [1]")), reference, progress=False)
    assert rows(reference) == before and Store(reference / "results.db").spec()["study"]["seeds"] == [0, 1]


def test_extend_adds_seeds_and_cells_and_trains_only_those(reference, tmp_path) -> None:
    import shutil

    out = tmp_path / "grown"
    shutil.copytree(reference, out)
    bigger = parse_spec(SPEC.replace("seeds = 2", "seeds = 3").replace('"elu"]', '"elu", "gelu"]'))
    with pytest.raises(StudyMismatch, match=r"grid activation \[relu, elu\] -> \[relu, elu, gelu\].*pass --extend"):
        run_study(bigger, out, progress=False)
    assert len(plan_study(bigger, out, extend=True).todo) == 9 - 4
    run_study(bigger, out, progress=False, extend=True)
    grown = rows(out)
    assert len(grown) == 9 and {k: grown[k] for k in rows(reference)} == rows(reference)
    assert Store(out / "results.db").spec()["grid"]["activation"] == ["relu", "elu", "gelu"]


# -- one process per study directory ----------------------------------------------------------------------
def test_a_second_process_is_refused_naming_the_owner_and_a_dead_owner_is_taken_over(tmp_path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from rectlab.study import StudyLock; "
            f"lock = StudyLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); "
            "time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=CHILD_ENV,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            StudyLocked,
            match=rf"in use by another rectlab process \(PID {holder.pid} on "
            rf"{socket.gethostname()}\)",
        ):
            run_study(parse_spec(SPEC), tmp_path, progress=False)
        assert not (tmp_path / "results.db").exists()  # nothing was written by the refused process
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with StudyLock(tmp_path):  # the owner died: its lock is stale and taken over
        assert (tmp_path / ".rectlab.lock").read_text().split()[:2] == [str(os.getpid()), socket.gethostname()]


def test_a_leftover_lock_file_of_a_dead_process_does_not_block(tmp_path) -> None:
    (tmp_path / ".rectlab.lock").write_text("999999 some-other-host 2020-01-01T00:00:00\n")
    with StudyLock(tmp_path):
        pass


# -- bad input, one line before any training ----------------------------------------------------------
def test_out_that_is_a_file_or_unwritable_is_refused(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        run_study(parse_spec(SPEC), tmp_path / "file", progress=False)
    if os.geteuid() != 0:
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError, match="cannot write to the study directory"):
            run_study(parse_spec(SPEC), locked, progress=False)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_results_db_is_named_with_what_to_do(reference, tmp_path, damage) -> None:
    db = tmp_path / "results.db"
    data = (reference / "results.db").read_bytes()
    with sqlite3.connect(reference / "results.db") as con:  # fold the WAL into the file first
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = (reference / "results.db").read_bytes()
    db.write_bytes(b"this is not a database" * 100 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(StoreError, match=r"is not a readable rectlab results database .*Move it aside \(mv "):
        Store(db)
    from rectlab.report import collect

    with pytest.raises(StoreError, match="not a readable rectlab results database"):
        collect(tmp_path)


def test_every_cell_is_validated_before_the_first_run(tmp_path) -> None:
    bad = parse_spec(SPEC.replace('"elu"]', '"elu"]\nactivation_kwargs = [{}, { slope = 0.1 }]'))
    with pytest.raises(
        SpecError,
        match=r"cell activation=relu, activation_kwargs=\{'slope': 0.1\}: cannot build "
        r"the model \(TypeError",
    ):
        run_study(bad, tmp_path, progress=False)
    assert Store(tmp_path / "results.db").runs() == []  # nothing trained, nothing failed


def test_a_data_dir_that_does_not_hold_the_dataset_is_an_error(tmp_path) -> None:
    spec = parse_spec(SPEC.replace('dataset = "digits"', 'dataset = "fashion-mnist"'))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_study(spec, tmp_path / "out", data_dir=str(tmp_path / "missing"), progress=False)
    (tmp_path / "empty").mkdir()
    from rectlab.data import find

    if find("fashion-mnist") is None:
        pytest.skip("no Fashion-MNIST copy on this machine to fall back to")
    with pytest.raises(FileNotFoundError, match=r"does not hold fashion-mnist \(it would be read from "):
        run_study(spec, tmp_path / "out", data_dir=str(tmp_path / "empty"), progress=False)


# -- exactly-once epochs ----------------------------------------------------------------------------------
class Killed(BaseException):
    """Stands for SIGKILL inside one process (the subprocess kill test does the real thing)."""


@pytest.mark.parametrize("where", ["before commit", "after commit"])
def test_a_crash_between_checkpoint_and_row_loses_nothing(reference, tmp_path, monkeypatch, where) -> None:
    commit = Store.commit_epoch
    calls = {"n": 0}

    def crashing(self, run_hash, metrics, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 and where == "before commit":  # epoch 2 of the first run: checkpoint written, no row
            raise Killed
        commit(self, run_hash, metrics, **kwargs)
        if calls["n"] == 2:
            raise Killed  # row committed, checkpoint-2.pt not yet renamed to checkpoint.pt

    with monkeypatch.context() as m:
        m.setattr(Store, "commit_epoch", crashing)
        with pytest.raises(Killed):
            run_study(parse_spec(SPEC), tmp_path, progress=False)
    run_dir = next((tmp_path / "runs").iterdir())
    assert (run_dir / "checkpoint-2.pt").exists()
    run_study(parse_spec(SPEC), tmp_path, progress=False)
    assert rows(tmp_path) == rows(reference)
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "metrics.csv"]
    assert {r["status"] for r in Store(tmp_path / "results.db").runs()} == {"done"}
    run = next(r for r in Store(tmp_path / "results.db").runs() if r["hash"] == run_dir.name)
    csv_epochs = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert csv_epochs == [str(e["epoch"]) for e in run["epochs"]]  # the CSV log, too, holds each epoch once
