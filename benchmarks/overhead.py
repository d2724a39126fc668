"""Where a command's and a run's time goes besides training.

Two measurements, each printed as a breakdown (this is a benchmark: it measures and prints, it asserts
nothing):

- **Command**: a fresh ``python -m rectlab compare`` of one 1-epoch run on 1,000 images (the smallest
  study), with ``--executor local`` and ``processes``, timed from outside (wall time of the process) and
  from inside (the phases the command writes to ``$RECTLAB_TIMINGS``, see :mod:`rectlab.timings`: start-up
  with the imports, plan, validation, training, collecting, the report, and the process's total).
- **Run**: one ``--epochs``-epoch run of ``--model`` on the full dataset as the study runner trains it
  (`rectlab.study.record.execute_run`: results database, checkpoints), split into building the model,
  training steps, evaluation, and the epoch-end work (probes, checkpoint and the database commit); the
  overhead is everything but the training steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from rectlab import data as rdata
from rectlab.study import spec_from_dict
from rectlab.study.grid import runs
from rectlab.study.record import execute_run
from rectlab.study.store import Store

__all__ = ["add_arguments", "main", "measure_command", "measure_run", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="small-cnn", help="the run's model (default small-cnn)")
    p.add_argument("--activation", default="relu", help="the run's activation (default relu)")
    p.add_argument("--epochs", type=int, default=5, help="the run's epochs (default 5)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--repeats", type=int, default=3, help="command measurements (the minimum is reported)")
    p.add_argument("--skip-run", action="store_true", help="only the command measurement")
    p.add_argument("--json", default=None, help="also write every figure to this JSON file")


def _command(dataset: str, data_dir: str | None, out: str, executor: str) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "rectlab",
        "compare",
        "--activations",
        "relu",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--model",
        "small-cnn",
        "--dataset",
        dataset,
        "--train-limit",
        "1000",
        "--test-limit",
        "1000",
        "--executor",
        executor,
        "--no-progress",
        "--out",
        out,
    ]
    return cmd + (["--data-dir", data_dir] if data_dir else [])


def measure_command(
    dataset: str = "fashion-mnist", data_dir: str | None = None, repeats: int = 3, executor: str = "local"
) -> dict[str, Any]:
    """Wall time of the smallest study as a fresh process, with the phases it reports; the fastest of
    ``repeats``."""
    best: dict[str, Any] | None = None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "RECTLAB_TIMINGS": str(Path(tmp) / "timings.json")}
            t0 = time.perf_counter()
            proc = subprocess.run(
                _command(dataset, data_dir, str(Path(tmp) / "study"), executor), env=env, capture_output=True, text=True
            )
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"the measured command failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
            phases = json.loads((Path(tmp) / "timings.json").read_text())
        if best is None or wall < best["wall_s"]:
            best = {"wall_s": wall, "phases": phases, "executor": executor}
    assert best is not None
    return best


def measure_run(
    model: str = "small-cnn",
    activation: str = "relu",
    epochs: int = 5,
    dataset: str = "fashion-mnist",
    data_dir: str | None = None,
) -> dict[str, Any]:
    """One run as the study runner trains it (results database, checkpoints; one thread), phase by phase."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    loaded = rdata.load(dataset, data_dir=data_dir)
    load_s = time.perf_counter() - t0
    spec = spec_from_dict(
        {
            "study": {"name": "overhead", "seeds": 1},
            "base": {
                "model": model,
                "dataset": dataset,
                "epochs": epochs,
                "device": "cpu",
                "augment": False,
                **({"data_dir": data_dir} if data_dir else {}),
            },
            "grid": {"activation": [activation]},
        }
    )
    (one,) = runs(spec)
    marks: list[tuple[str, float]] = []

    def reporter(event: str, **info: Any) -> None:
        if event != "step":
            marks.append((event, time.perf_counter()))

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        status = execute_run(tmp, spec.name, one, data=loaded, reporter=reporter)
        total = time.perf_counter() - t0
        rows = Store(Path(tmp) / "results.db").runs()[0]["epochs"]
    times = {e: [t for name, t in marks if name == e] for e in ("epoch_start", "evaluated", "epoch_end")}
    steps = sum(r["seconds"] for r in rows)
    # epoch_start -> evaluated is the training steps (the row's "seconds") and then the test set
    evaluate = sum(b - a for a, b in zip(times["epoch_start"], times["evaluated"])) - steps
    epoch_end = sum(b - a for a, b in zip(times["evaluated"], times["epoch_end"]))
    build = times["epoch_start"][0] - t0
    finish = t0 + total - times["epoch_end"][-1]
    return {
        "model": model,
        "activation": activation,
        "epochs": epochs,
        "status": status,
        "total_s": total,
        "load_data_s": load_s,
        "build_s": build,
        "train_steps_s": steps,
        "eval_s": evaluate,
        "epoch_end_s": epoch_end,
        "finish_s": finish,
        "overhead_s": total - steps,
        "overhead_fraction": (total - steps) / steps,
    }


def run(args: argparse.Namespace) -> int:
    """Measure and print. Returns 0."""
    figures: dict[str, Any] = {}
    for executor in ("local", "processes"):
        c = measure_command(args.dataset, args.data_dir, args.repeats, executor)
        figures[f"command_{executor}"] = c
        phases = ", ".join(f"{k} {v:.2f} s" for k, v in c["phases"].items())
        print(
            f"command (1 run, 1 epoch, 1,000 images, --executor {executor}): {c['wall_s']:.2f} s wall; "
            f"inside: {phases}",
            flush=True,
        )
    if not args.skip_run:
        r = measure_run(args.model, args.activation, args.epochs, args.dataset, args.data_dir)
        figures["run"] = r
        print(
            f"run ({r['model']}, {r['activation']}, {r['epochs']} epochs, full {args.dataset}, 1 thread, "
            f"{r['status']}): {r['total_s']:.1f} s = build {r['build_s']:.2f} + training steps "
            f"{r['train_steps_s']:.1f} + evaluation {r['eval_s']:.2f} + epoch ends (probes, checkpoint, commit) "
            f"{r['epoch_end_s']:.2f} + finish {r['finish_s']:.2f} s; overhead {r['overhead_s']:.2f} s = "
            f"{100 * r['overhead_fraction']:.1f}% of the training steps (the data load, once per process: "
            f"{r['load_data_s']:.2f} s)",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/overhead.py", description=__doc__)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
