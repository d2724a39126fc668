"""Helpers shared by subcommands: argument types, the training and execution flags, the console.

Light on purpose: the parsers (``cli.parsers``) use it, and building them must not import torch. The choice
lists below are the library's (``rectlab.training.config``, ``rectlab.study``); a test checks they agree.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..errors import InputError

OPTIMIZERS = ("sgd", "adamw")  # rectlab.training.config.OPTIMIZERS
SCHEDULES = ("cosine", "step", "constant")  # rectlab.training.config.SCHEDULES
AMP_MODES = ("auto", "bf16", "off")  # rectlab.training.config.AMP_MODES
EXECUTORS = ("local", "processes", "ray")  # rectlab.study.EXECUTORS
TRACKERS = ("tensorboard", "mlflow")  # rectlab.training.tracking.TRACKERS, less the csv log every run writes


def csv_list(text: str) -> list[str]:
    """Split at the commas outside parentheses, so ``relu,search:max(x,tanh(x))`` is two items."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    items = [t.strip() for t in [*parts, text[start:]] if t.strip()]
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


def positive_int_list(text: str) -> list[int]:
    return [positive_int(t) for t in csv_list(text)]


# The numeric training flags; with add_training_args(lists=True) each takes a comma list (`compare`: a grid axis).
NUMERIC_TRAINING_FIELDS = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_epochs",
    "label_smoothing",
    "train_limit",
    "test_limit",
)


def add_training_args(
    p: argparse.ArgumentParser,
    lists: bool = False,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    sgd_lr: float = 0.05,
    augment: bool = True,
) -> None:
    """The optimisation flags of one run (`compare` and `train`); `training_fields` reads them back.

    With ``lists=True`` every numeric flag takes a comma list (``--lr 0.01,0.05``) and holds a list. The
    keyword arguments are the command's defaults (`compare` picks ones that reach a plateau in minutes).
    """
    ints, floats = (positive_int_list, float_list) if lists else (positive_int, finite_float)
    one = (lambda v: [v]) if lists else (lambda v: v)
    grid = " (a comma list is a grid axis)" if lists else ""
    p.add_argument("--epochs", type=ints, default=one(epochs), help=f"epochs (default {epochs}){grid}")
    p.add_argument("--batch-size", type=ints, default=one(batch_size), help=f"batch size (default {batch_size}){grid}")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    p.add_argument(
        "--lr",
        type=floats,
        default=None,
        help=f"learning rate (default {sgd_lr:g} for SGD, 1e-3 for AdamW){grid}"
        + (", e.g. 0.01,0.05" if lists else ""),
    )
    p.set_defaults(default_sgd_lr=sgd_lr)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--weight-decay", type=floats, default=one(5e-4), help=f"weight decay (default 5e-4){grid}")
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    p.add_argument("--warmup-epochs", type=floats, default=one(0.0), help=f"warmup epochs (default 0){grid}")
    p.add_argument("--label-smoothing", type=floats, default=one(0.0), help=f"label smoothing (default 0){grid}")
    p.add_argument("--train-limit", type=ints, default=None, help=f"use only the first N training examples{grid}")
    p.add_argument("--test-limit", type=ints, default=None, help=f"use only the first N test examples{grid}")
    p.add_argument(
        "--curve-test-limit",
        type=positive_int,
        default=None,
        help="test examples evaluated after each epoch but the last, for the curves (default 2000; the "
        "last epoch always uses the whole test set)",
    )
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=augment,
        help=f"random crops and flips of the training images (default {'on' if augment else 'off'})",
    )
    p.add_argument("--amp", choices=AMP_MODES, default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile each model (pays off for long GPU runs)")
    p.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="replay each training step from a CUDA graph (GPU only; small models train faster)",
    )


def training_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The `TrainConfig` fields set by `add_training_args` (lists where the flags take lists)."""
    lr = args.lr if args.lr is not None else (args.default_sgd_lr if args.optimizer == "sgd" else 1e-3)
    if args.lr is None and isinstance(args.epochs, list):
        lr = [lr]
    fields: dict[str, Any] = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": lr,
        "nesterov": args.nesterov,
        "weight_decay": args.weight_decay,
        "schedule": args.schedule,
        "warmup_epochs": args.warmup_epochs,
        "label_smoothing": args.label_smoothing,
        "augment": args.augment,
        "amp": args.amp,
        "compile": args.compile,
    }
    for key in ("train_limit", "test_limit", "curve_test_limit"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    if args.cuda_graphs:
        fields["cuda_graphs"] = True
    return fields


def add_execution_args(p: argparse.ArgumentParser, dry_run: bool = True) -> None:
    """How a study runs: device, data, executor, re-run policy and trackers (`compare`, `run`, `reproduce`,
    `search`)."""
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the spec's, else auto)")
    p.add_argument(
        "--data-dir",
        default=None,
        help="the folder that holds the dataset (an error if it does not; also $RECTLAB_DATA)",
    )
    p.add_argument(
        "--executor",
        default="local",
        choices=EXECUTORS,
        help="how runs are executed (default local: one after another)",
    )
    p.add_argument(
        "--workers",
        "--runs-per-gpu",
        dest="workers",
        type=positive_int,
        default=1,
        help="runs at a time with --executor processes/ray (several small runs share one GPU)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="CPU threads per run, the same with every executor so results do not depend on it (default 1)",
    )
    p.add_argument(
        "--address", default=None, help="--executor ray: the cluster to join ('auto': the one this machine belongs to)"
    )
    p.add_argument(
        "--gpus-per-run",
        type=finite_float,
        default=None,
        help="--executor ray: GPUs each run asks for (default 1/--workers when runs use CUDA)",
    )
    p.add_argument(
        "--extend",
        action="store_true",
        help="add seeds or grid values to the study in --out (otherwise a different spec is refused)",
    )
    p.add_argument("--retry-failed", action="store_true", help="train runs that failed (an error) again")
    p.add_argument("--retry-diverged", action="store_true", help="train runs that diverged (NaN/inf loss) again")
    p.add_argument(
        "--allow-numerics-change",
        action="store_true",
        help="go on with a study trained with other numerics (--threads, torch version, device kind, "
        "determinism flags; otherwise refused, as results change with them)",
    )
    if dry_run:
        p.add_argument(
            "--dry-run", action="store_true", help="validate everything and say what would run, train nothing"
        )
    p.add_argument("--no-progress", action="store_true", help="no progress display (bars or per-epoch lines)")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="log every run to OUT/tensorboard/<cell>-seed<N> (metrics, learned slopes, dead neurons); "
        "view with: tensorboard --logdir OUT/tensorboard",
    )
    p.add_argument(
        "--mlflow",
        action="store_true",
        help="log every run to the MLflow file store OUT/mlruns (one experiment per study; offline); "
        "view with: mlflow ui --backend-store-uri OUT/mlruns",
    )


def execution_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of `run_study` set by `add_execution_args`."""
    if args.gpus_per_run is not None and args.gpus_per_run < 0:
        raise InputError(f"--gpus-per-run must be >= 0, got {args.gpus_per_run}")
    if getattr(args, "out", None) is not None and not str(args.out).strip():
        raise InputError("--out is empty; pass the study folder, e.g. --out runs/x")
    return {
        "executor": args.executor,
        "workers": args.workers,
        "threads": args.threads,
        "device": args.device,
        "data_dir": args.data_dir,
        "extend": args.extend,
        "retry_failed": args.retry_failed,
        "retry_diverged": args.retry_diverged,
        "allow_numerics_change": args.allow_numerics_change,
        "address": args.address,
        "gpus_per_run": args.gpus_per_run,
        "progress": not args.no_progress,
        "trackers": trackers(args),
        "imports": list(getattr(args, "imports", None) or []),
    }


def trackers(args: argparse.Namespace) -> list[str]:
    """The trackers the flags ask for (``--tensorboard``, ``--mlflow``)."""
    return [name for name in TRACKERS if getattr(args, name, False)]


def console() -> Any:
    """A rich console; when output goes to a file or pipe, wide enough for the results table."""
    from rich.console import Console  # 0.2 s to import: cli.parsers imports this module for --help

    con = Console()
    if not con.is_terminal:
        con = Console(width=max(con.width, 150))
    return con
