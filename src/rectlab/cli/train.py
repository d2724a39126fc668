"""``rectlab train``: one run, on one device or, started by ``torchrun``, across processes (DDP).

    rectlab train --model resnet20 --activation prelu --dataset fashion-mnist --epochs 10 --out runs/one
    torchrun --nproc-per-node 4 -m rectlab train --model resnet56 --dataset cifar10 --out runs/big
"""

from __future__ import annotations

import argparse
import json

from ..training.config import INITS
from .common import add_training_args, finite_float, positive_int, training_fields


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train one model (also across processes with torchrun)",
        description="Train one model and print its per-epoch metrics; with --out, checkpoint every epoch (a re-run "
        "resumes) and write OUT/metrics.json. Started by torchrun, the run trains with DistributedDataParallel "
        "across all processes: --batch-size is the global batch, split evenly between them.",
    )
    p.add_argument("--model", default="small-cnn", help="model name (default small-cnn)")
    p.add_argument("--activation", default="relu", help="activation name (default relu)")
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name (default fashion-mnist)")
    p.add_argument("--seed", type=int, default=0)
    add_training_args(p)
    p.add_argument("--init", choices=INITS, default="default")
    p.add_argument("--erase-relu", type=finite_float, default=0.0, help="EraseReLU proportion of basic modules")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (under torchrun: this rank's GPU)")
    p.add_argument("--data-dir", default=None, help="the folder that holds the dataset (an error if it does not)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--out", default=None, help="run directory: checkpoint.pt (resumable) and metrics.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import InputError
    from ..files import write_text
    from ..study.validate import check_data_dir
    from ..training.config import from_dict
    from ..training.loop import Distributed, Diverged, train_one

    config = from_dict({**training_fields(args), "model": args.model, "activation": args.activation,
                        "dataset": args.dataset, "seed": args.seed, "init": args.init, "erase_relu": args.erase_relu,
                        "device": args.device, "data_dir": args.data_dir}, where="rectlab train")
    check_data_dir(config.dataset, config.data_dir)
    if args.out is not None and not args.out.strip():
        raise InputError("--out is empty; pass the run folder, e.g. --out runs/one (or leave --out out)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dist = Distributed.init_from_env(config.device)

    def report(event: str, **info) -> None:
        if event == "epoch_end" and dist.is_main:
            m = info["metrics"]
            print(f"epoch {m['epoch']}/{config.epochs}: train loss {m['train_loss']:.4f}, test error "
                  f"{m['test_error']:.2f}%, {m['seconds']:.1f} s", flush=True)

    try:
        result = train_one(config, args.out, reporter=report)
    except Diverged as e:
        if dist.is_main:
            print(f"rectlab: {e}")
        return 3
    finally:
        if dist.world > 1:
            torch.distributed.destroy_process_group()
    if dist.is_main:
        print(f"{config.model} / {config.activation} on {config.dataset}: test error {result.final['test_error']:.2f}%"
              f" after {config.epochs} epochs on {result.device}" + (f" x {dist.world} processes" if dist.world > 1
                                                                      else ""))
        if args.out is not None:
            from pathlib import Path

            record = {"config": config.to_dict(), "metrics": result.metrics, "extras": result.extras,
                      "device": result.device, "processes": dist.world}
            write_text(Path(args.out) / "metrics.json", json.dumps(record, indent=1, default=str))
    return 0
