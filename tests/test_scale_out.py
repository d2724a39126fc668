"""Scale-out on real engines: the Ray executor on a local Ray instance gives the local executor's results, and
one run across two processes with torchrun (DDP, gloo on CPU) matches one process with the same global batch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rectlab.study import Store, parse_spec, run_study
from study_helpers import CHILD_ENV, rows, tiny_spec

SPEC = tiny_spec(("relu", "prelu"), name="scale-out")


@pytest.mark.slow
def test_ray_executor_on_a_local_ray_instance_gives_the_local_results(tmp_path, monkeypatch) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", CHILD_ENV["PYTHONPATH"])  # the Ray workers import rectlab from this checkout
    run_study(parse_spec(SPEC), tmp_path / "local", progress=False)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    try:
        run_study(parse_spec(SPEC), tmp_path / "ray", executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")  # bit-identical: same threads, same seeds
    assert {r["status"] for r in Store(tmp_path / "ray" / "results.db").runs()} == {"done"}


def train(out: Path, processes: int) -> list[dict]:
    args = [
        "-m",
        "rectlab",
        "train",
        "--model",
        "mlp",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--device",
        "cpu",
        "--no-augment",
        "--out",
        str(out),
    ]
    if processes > 1:
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
        command = [torchrun, "--standalone", f"--nproc-per-node={processes}", *args]
    else:
        command = [sys.executable, *args]
    done = subprocess.run(command, env=CHILD_ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "metrics.json").read_text())
    assert record["processes"] == processes
    return record["metrics"]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo is tested on Linux")
def test_torchrun_ddp_on_two_processes_matches_one_process_with_the_same_global_batch(tmp_path) -> None:
    one = train(tmp_path / "one", 1)
    two = train(tmp_path / "two", 2)
    assert [m["epoch"] for m in two] == [1, 2]
    for a, b in zip(one, two):
        # Same data order and global batch; only the order of float sums differs (gradients are averaged over
        # processes): losses agree to a relative 1e-5 (measured: ~1e-7), errors to one example (a near-tie).
        assert b["lr"] == a["lr"]
        for key in ("train_loss", "test_loss"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), key
        assert abs(b["test_error"] - a["test_error"]) <= 100 / 360 + 1e-9  # digits: 360 test images
        assert abs(b["train_error"] - a["train_error"]) <= 100 / 1408 + 1e-9  # 22 batches of 64
