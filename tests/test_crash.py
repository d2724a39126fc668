"""A study killed at any point (SIGKILL, Ctrl-C, the parent of its workers dying) loses nothing and resumes
to exactly the results of an uninterrupted run, row for row."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rectlab.study import Store, StudyLock, load_spec, run_study
from study_helpers import CHILD_ENV, rows, tiny_spec

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and SIGKILL")]

CHILD = Path(__file__).resolve().parent / "study_child.py"


def write_spec(path: Path, epochs: int, activations: tuple[str, ...] = ("relu",)) -> Path:
    path.write_text(tiny_spec(activations, epochs=epochs, name="crash"))
    return path


def assert_old_or_new_state(out: Path) -> None:
    """Every run's epoch rows are exactly 1..checkpoint_epoch, and the checkpoint the next process will
    resume from holds that epoch and those very rows."""
    import sqlite3

    with sqlite3.connect(out / "results.db") as db:
        committed = dict(db.execute("SELECT hash, checkpoint_epoch FROM runs").fetchall())
    for run in Store(out / "results.db").runs():
        epoch = committed[run["hash"]]
        assert [e["epoch"] for e in run["epochs"]] == list(range(1, epoch + 1)), run["hash"]
        if epoch:
            folder = out / "runs" / run["hash"]
            path = folder / f"checkpoint-{epoch}.pt"
            state = torch.load(path if path.exists() else folder / "checkpoint.pt", weights_only=False)
            assert state["epoch"] == epoch and state["metrics"] == run["epochs"]


def child(out: Path, spec: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(out), str(spec), *extra],
        env=CHILD_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def test_sigkill_anywhere_then_resume_gives_the_uninterrupted_rows(tmp_path) -> None:
    spec = write_spec(tmp_path / "s.toml", epochs=3)
    reference = tmp_path / "reference"
    run_study(load_spec(spec), reference, progress=False)
    out = tmp_path / "killed"
    # Instrumented kill points (the N-th call in that process), then kills at random moments.
    # commit:2 -> checkpoint-2.pt written, its row not; replace:3 -> inside the write of checkpoint-2.pt;
    # replace:2 -> row committed, checkpoint-1.pt not renamed; finish:1 -> all epochs committed, not marked done.
    points = ["commit:2", "replace:3", "replace:2", "finish:1"]
    rng = random.Random(10)
    for point in points + [None, None]:
        proc = child(out, spec, *(["--kill", point] if point else []))
        if point is None:  # a random moment once this process has trained an epoch or two
            target = min(6, sum(map(len, rows(out).values())) + rng.randint(1, 2))

            def trained(proc: subprocess.Popen = proc, target: int = target) -> bool:
                return sum(map(len, rows(out).values())) >= target or proc.poll() is not None

            wait_for(trained, 120, "epoch rows")
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        assert proc.returncode in (-signal.SIGKILL, 0), proc.returncode
        assert_old_or_new_state(out)
    run_study(load_spec(spec), out, progress=False)
    assert rows(out) == rows(reference)
    epochs = {r["hash"]: [str(e["epoch"]) for e in r["epochs"]] for r in Store(out / "results.db").runs()}
    for folder in (out / "runs").iterdir():
        assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt", "metrics.csv"]
        csv_epochs = [line.split(",")[0] for line in (folder / "metrics.csv").read_text().splitlines()[1:]]
        assert csv_epochs == epochs[folder.name]  # the CSV log holds each epoch once, as the database does
    assert {r["status"] for r in Store(out / "results.db").runs()} == {"done"}


def _start_long_study(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    # 4 runs of ~5,000 epochs (minutes each: 300 epochs of this MLP take only 10-30 s, so the first two runs
    # could end before the signal and the test would catch the next two while they start)
    spec = write_spec(tmp_path / "s.toml", epochs=5000, activations=("relu", "elu"))
    out = tmp_path / "out"
    proc = child(out, spec, "--executor", "processes", "--workers", "2")

    def two_training() -> bool:
        if not (out / "results.db").exists():
            return False
        return sum(bool(r["epochs"]) and r["status"] == "running" for r in Store(out / "results.db").runs()) == 2

    wait_for(two_training, 180, "two runs training")
    return proc, out


def test_workers_die_with_their_parent(tmp_path) -> None:
    proc, out = _start_long_study(tmp_path)
    workers = descendants(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not any(alive(p) for p in workers), 30, "the workers to exit")
    statuses = sorted(r["status"] for r in Store(out / "results.db").runs())
    assert statuses == ["interrupted", "interrupted"]  # they stopped cleanly at their last committed epoch
    with StudyLock(out):
        pass


def test_ctrl_c_stops_the_queue_at_once(tmp_path) -> None:
    proc, out = _start_long_study(tmp_path)
    workers = descendants(proc.pid)
    signaled = time.time()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    wait_for(lambda: not any(alive(p) for p in workers), 15, "the workers to exit")
    runs = Store(out / "results.db").runs()
    assert sorted(r["status"] for r in runs) == ["interrupted", "interrupted"]  # no queued run started
    assert all(r["epochs"] for r in runs) and time.time() - signaled < 60
