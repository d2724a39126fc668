"""Helpers shared by subcommands: argument types, the training and execution flags, the console."""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..config import AMP_MODES, OPTIMIZERS, SCHEDULES


def csv_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list, e.g. relu,prelu,gelu")
    return items


def finite_float(text: str) -> float:
    """A float that is a real number: NaN and infinity are refused here, with the flag's name."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def float_list(text: str) -> list[float]:
    return [finite_float(t) for t in csv_list(text)]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r} (0 does not mean 'all')")
    return value


def add_training_args(p: argparse.ArgumentParser) -> None:
    """The optimisation flags of one run (`compare` and `train`); :func:`training_fields` reads them back."""
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    p.add_argument("--lr", type=finite_float, default=None, help="learning rate (default 0.05 for SGD, 1e-3 for AdamW)")
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--weight-decay", type=finite_float, default=5e-4)
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    p.add_argument("--warmup-epochs", type=finite_float, default=0.0)
    p.add_argument("--label-smoothing", type=finite_float, default=0.0)
    p.add_argument("--train-limit", type=positive_int, default=None, help="use only the first N training examples")
    p.add_argument("--test-limit", type=positive_int, default=None, help="use only the first N test examples")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--amp", choices=AMP_MODES, default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile each model (pays off for long GPU runs)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="replay each training step from a CUDA graph (GPU only; small models train faster)")


def training_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`rectlab.config.TrainConfig` fields set by :func:`add_training_args`."""
    lr = args.lr if args.lr is not None else (0.05 if args.optimizer == "sgd" else 1e-3)
    fields: dict[str, Any] = {
        "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": lr,
        "nesterov": args.nesterov, "weight_decay": args.weight_decay, "schedule": args.schedule,
        "warmup_epochs": args.warmup_epochs, "label_smoothing": args.label_smoothing, "augment": not args.no_augment,
        "amp": args.amp, "compile": args.compile,
    }
    for key in ("train_limit", "test_limit"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    if args.cuda_graphs:
        fields["cuda_graphs"] = True
    return fields


def add_execution_args(p: argparse.ArgumentParser, dry_run: bool = True) -> None:
    """How a study runs: device, data, executor and re-run policy (`compare`, `run`, `reproduce`)."""
    from ..study import EXECUTORS

    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the spec's, else auto)")
    p.add_argument("--data-dir", default=None,
                   help="the folder that holds the dataset (an error if it does not; also $RECTLAB_DATA)")
    p.add_argument("--executor", default="local", choices=EXECUTORS,
                   help="how runs are executed (default local: one after another)")
    p.add_argument("--workers", "--runs-per-gpu", dest="workers", type=positive_int, default=1,
                   help="runs at a time with --executor processes/ray (several small runs share one GPU)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="CPU threads per run, the same with every executor so results do not depend on it (default 1)")
    p.add_argument("--address", default=None,
                   help="--executor ray: the cluster to join ('auto': the one this machine belongs to)")
    p.add_argument("--gpus-per-run", type=finite_float, default=None,
                   help="--executor ray: GPUs each run asks for (default 1/--workers when runs use CUDA)")
    p.add_argument("--extend", action="store_true",
                   help="add seeds or grid values to the study in --out (otherwise a different spec is refused)")
    p.add_argument("--retry-failed", action="store_true", help="train runs that failed (an error) again")
    p.add_argument("--retry-diverged", action="store_true", help="train runs that diverged (NaN/inf loss) again")
    if dry_run:
        p.add_argument("--dry-run", action="store_true",
                       help="validate everything and say what would run, train nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def execution_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`rectlab.study.run_study` set by :func:`add_execution_args`."""
    if args.gpus_per_run is not None and args.gpus_per_run < 0:
        raise ValueError(f"--gpus-per-run must be >= 0, got {args.gpus_per_run}")
    return {"executor": args.executor, "workers": args.workers, "threads": args.threads, "device": args.device,
            "data_dir": args.data_dir, "extend": args.extend, "retry_failed": args.retry_failed,
            "retry_diverged": args.retry_diverged, "address": args.address, "gpus_per_run": args.gpus_per_run,
            "progress": not args.no_progress}


def console() -> Any:
    """A rich console; when output goes to a file or pipe, wide enough for the results table."""
    from rich.console import Console

    con = Console()
    if not con.is_terminal:
        con = Console(width=max(con.width, 150))
    return con
