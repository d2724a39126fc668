"""A study run by rectlab's concurrent executor vs the same runs one after another
in a plain PyTorch loop, side by side, with the error distributions of both.

The plain loop is the honest reference a user would write: data resident on the device, bf16
autocast and channels_last on GPU, SGD with a cosine schedule, one run after another. rectlab runs
the same grid with ``--executor processes --workers N`` (several runs sharing one GPU). The
benchmark prints wall-clock times, the speed-up, and per cell the mean ± std test error of both
ways with a Welch test, to show the concurrency does not change the results' distribution.

``--plain-seeds K`` runs only the first K seeds in the plain loop and scales its time to all the runs
(one run's time does not depend on its seed); the output says so. ``--cuda-graphs`` replays rectlab's
training steps from CUDA graphs (see :mod:`rectlab.training.step`).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rectlab import data as rdata
from rectlab import models
from rectlab.data import iterate_batches, normalize, random_crop_flip
from rectlab.report import collect
from rectlab.report.stats import compare as welch
from rectlab.report.stats import summarize
from rectlab.study import run_study, spec_from_dict
from rectlab.training.loop import describe_device, resolve_device

__all__ = ["add_arguments", "main", "measure", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--activations", default="relu,prelu,elu,gelu,silu", help="the cells (default 5)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=None, help="default 10 on GPU, 1 on CPU")
    p.add_argument("--train-limit", type=int, default=None, help="default all on GPU, 2000 on CPU")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument(
        "--workers",
        "--runs-per-gpu",
        dest="workers",
        type=int,
        default=None,
        help="concurrent runs for rectlab (default 5 on GPU, 2 on CPU)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the models in rectlab's runs")
    p.add_argument("--cuda-graphs", action="store_true", help="CUDA graphs for rectlab's training steps (GPU)")
    p.add_argument(
        "--plain-seeds",
        type=int,
        default=None,
        help="seeds run in the plain loop (default all); its time is scaled to all the runs",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--skip-plain", action="store_true", help="only time rectlab's executor")


def _plain_run(
    data, model_name: str, activation: str, seed: int, epochs: int, batch_size: int, lr: float, device: torch.device
) -> float:
    """The reference: a straightforward loop, GPU-resident data, bf16 + channels_last on GPU."""
    gpu = device.type == "cuda"
    torch.manual_seed(seed)
    model = models.create(
        model_name, activation=activation, num_classes=data.num_classes, in_channels=data.in_channels
    ).to(device)
    if gpu:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * (data.num_train // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed + 1)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for x, y in iterate_batches(data.train_x, data.train_y, batch_size, True, g, drop_last=True):
            x = normalize(random_crop_flip(x, data.crop_padding, data.flip, g), data.mean, data.std)
            if gpu:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
                loss = loss_fn(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    wrong = 0
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
        for x, y in iterate_batches(data.test_x, data.test_y, 1024, shuffle=False):
            wrong += int((model(normalize(x, data.mean, data.std)).argmax(1) != y).sum())
    return 100.0 * wrong / data.num_test


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the plain loop and rectlab's executor; print as it goes and return every figure.

    Returns:
        A dict: ``device``, ``model``, ``dataset``, ``runs``, ``epochs``, ``train_limit``, ``workers``,
        ``plain_runs`` (runs timed in the plain loop), ``plain_seconds`` (measured), ``plain_seconds_all``
        (scaled to all the runs), ``rectlab_seconds``, ``ratio`` (rectlab / plain for all the runs), and
        ``cells``: per cell the final test errors of both ways and the Welch p-value; ``rectlab_not_done``:
        one line per rectlab run that did not finish (status and first line of its error).
    """
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    epochs = args.epochs or (10 if gpu else 1)
    limit = args.train_limit if args.train_limit is not None else (None if gpu else 2000)
    workers = args.workers or (5 if gpu else 2)
    acts = args.activations.split(",")
    n_runs = len(acts) * args.seeds
    plain_seeds = min(args.seeds, args.plain_seeds or args.seeds)
    print(
        f"device: {describe_device(device)} | {args.model} on {args.dataset} | {len(acts)} cells x {args.seeds} "
        f"seeds = {n_runs} runs | {epochs} epochs | train_limit {limit} | rectlab workers {workers}",
        flush=True,
    )
    data = rdata.load(args.dataset, data_dir=args.data_dir).limit(train=limit).to(device)

    plain_errors: dict[str, dict[int, float]] = {a: {} for a in acts}
    plain_seconds = math.nan
    if not args.skip_plain:
        t0 = time.perf_counter()
        for seed in range(plain_seeds):
            for act in acts:
                plain_errors[act][seed] = _plain_run(
                    data, args.model, act, seed, epochs, args.batch_size, args.lr, device
                )
        if gpu:
            torch.cuda.synchronize(device)
        plain_seconds = time.perf_counter() - t0
        scaled = "" if plain_seeds == args.seeds else f" for {plain_seeds * len(acts)} runs"
        print(f"plain sequential loop: {plain_seconds:.1f} s{scaled}", flush=True)
    plain_all = plain_seconds * args.seeds / plain_seeds

    spec = spec_from_dict(
        {
            "study": {"name": "bench-study", "seeds": args.seeds, "baseline": {"activation": acts[0]}},
            "base": {
                "model": args.model,
                "dataset": args.dataset,
                "epochs": epochs,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "device": str(device),
                "compile": args.compile,
                **({"cuda_graphs": True} if args.cuda_graphs else {}),
                **({"train_limit": limit} if limit else {}),
            },
            "grid": {"activation": acts},
        },
        where="bench study",
    )
    out = Path(tempfile.mkdtemp(prefix="rectlab-bench-study-"))
    try:
        t0 = time.perf_counter()
        run_study(
            spec,
            out,
            executor="processes" if workers > 1 else "local",
            workers=workers,
            data_dir=args.data_dir,
            progress=False,
        )
        ours_seconds = time.perf_counter() - t0
        results = collect(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"rectlab ({workers} concurrent runs): {ours_seconds:.1f} s", flush=True)
    not_done = [f"{r.get('status')}: {(r.get('error') or '').splitlines()[0] if r.get('error') else ''}"
                for r in results.incomplete]  # fmt: skip
    if not_done:
        print(f"{len(not_done)} of rectlab's runs did not finish; first: {not_done[0]}", flush=True)
    ratio = ours_seconds / plain_all
    if not math.isnan(plain_seconds):
        how = "" if plain_seeds == args.seeds else f" (plain time scaled from {plain_seeds} of {args.seeds} seeds)"
        print(f"time ratio rectlab / plain: {ratio:.2f} (target <= 0.33 on a GPU){how}")
    cells = []
    print(f"\n{'cell':<12} {'plain err % (mean ± std)':>26} {'rectlab err %':>20} {'p (Welch)':>10}")
    for cell in results.cells:
        ours = {r["seed"]: r["final"] for r in cell.runs}
        s_ours = summarize(list(ours.values()))
        plain = plain_errors.get(cell.label, {})
        row = {
            "cell": cell.label,
            "rectlab_errors": list(ours.values()),
            "plain_errors": list(plain.values()),
            "rectlab_mean": s_ours.mean,
            "rectlab_std": s_ours.std,
        }
        if len(plain) >= 2 and len(ours) >= 2:
            s_plain = summarize(list(plain.values()))
            shifted = {k + 10_000: v for k, v in plain.items()}  # different runs: force an unpaired test
            p = welch(shifted, ours).p_value
            row.update(plain_mean=s_plain.mean, plain_std=s_plain.std, p_value=p)
            print(
                f"{cell.label:<12} {s_plain.mean:>12.2f} ± {s_plain.std:<10.2f} {s_ours.mean:>10.2f} ± "
                f"{s_ours.std:<7.2f} {p:>10.3f}"
            )
        else:
            plain_text = f"{sum(plain.values()) / len(plain):.2f} (n={len(plain)})" if plain else "-"
            print(f"{cell.label:<12} {plain_text:>26} {s_ours.mean:>10.2f} ± {s_ours.std:<7.2f}")
        cells.append(row)
    return {
        "device": describe_device(device),
        "model": args.model,
        "dataset": args.dataset,
        "runs": n_runs,
        "epochs": epochs,
        "train_limit": limit,
        "workers": workers,
        "cuda_graphs": bool(args.cuda_graphs),
        "plain_runs": 0 if args.skip_plain else plain_seeds * len(acts),
        "plain_seconds": plain_seconds,
        "plain_seconds_all": plain_all,
        "rectlab_seconds": ours_seconds,
        "ratio": ratio,
        "cells": cells,
        "rectlab_not_done": not_done,
    }


def run(args: argparse.Namespace) -> int:
    """Measure and print. Returns 0."""
    measure(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/study.py", description=__doc__)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
