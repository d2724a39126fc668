"""``rectlab train``: one run, on one device or, started by ``torchrun``, across processes (DDP). The parser is
in ``cli.parsers``.

    rectlab train --model resnet20 --activation prelu --dataset fashion-mnist --epochs 10 --out runs/one
    torchrun --nproc-per-node 4 -m rectlab train --model resnet56 --dataset cifar10 --out runs/big
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from ..activations import format_spec, parse_kwargs, parse_spec
from ..errors import InputError
from ..files import write_text
from ..study.validate import check_data_dir
from ..training import tracking
from ..training.config import from_dict
from ..training.loop import Distributed, Diverged, train_one
from .common import trackers, training_fields


def run(args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {
        **training_fields(args),
        "model": args.model,
        "activation": format_spec(*parse_spec(args.activation)),
        "dataset": args.dataset,
        "seed": args.seed,
        "init": args.init,
        "erase_relu": args.erase_relu,
        "device": args.device,
        "data_dir": args.data_dir,
    }
    if args.model_kwargs:
        fields["model_kwargs"] = parse_kwargs(args.model_kwargs, what=f"--model-kwargs {args.model_kwargs!r}")
    config = from_dict(fields, where="rectlab train")
    wanted = trackers(args)
    if wanted and args.out is None:
        raise InputError(f"--{' and --'.join(wanted)} write into the run directory: pass --out DIR")
    check_data_dir(config.dataset, config.data_dir)
    if args.out is not None and not args.out.strip():
        raise InputError("--out is empty; pass the run folder, e.g. --out runs/one (or leave --out out)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dist = Distributed.init_from_env(config.device)

    def report(event: str, **info: Any) -> None:
        if event == "epoch_end" and dist.is_main:
            m = info["metrics"]
            print(
                f"epoch {m['epoch']}/{config.epochs}: train loss {m['train_loss']:.4f}, test error "
                f"{m['test_error']:.2f}%, {m['seconds']:.1f} s",
                flush=True,
            )

    callbacks = []
    if args.out is not None and dist.is_main:
        label = f"{config.model}-{config.activation}"
        callbacks = tracking.callbacks(
            wanted, args.out, label, config.seed, run_dir=args.out, experiment=f"train {Path(args.out).name}"
        )
    try:
        result = train_one(config, args.out, reporter=report, callbacks=callbacks)
    except Diverged as e:
        if dist.is_main:
            print(f"rectlab: {e}")
        return 3
    finally:
        if dist.world > 1:
            torch.distributed.destroy_process_group()
    if dist.is_main:
        print(
            f"{config.model} / {config.activation} on {config.dataset}: test error {result.final['test_error']:.2f}%"
            f" after {config.epochs} epochs on {result.device}"
            + (f" x {dist.world} processes" if dist.world > 1 else "")
        )
        if args.out is not None:
            record = {
                "config": config.to_dict(),
                "metrics": result.metrics,
                "extras": result.extras,
                "device": result.device,
                "processes": dist.world,
            }
            write_text(Path(args.out) / "metrics.json", json.dumps(record, indent=1, default=str))
            logs = ", ".join(["metrics.csv", *(f"{t} logs" for t in wanted)])
            print(f"run directory: {Path(args.out).resolve()} (checkpoint.pt, metrics.json, {logs})")
    return 0
