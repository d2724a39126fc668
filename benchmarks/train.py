"""Training-step throughput (images/s) per activation, with the ratio to ReLU.

For every model x activation, a synthetic CIFAR-shaped batch is trained for ``--steps`` SGD steps
after ``--warmup`` steps and timed (CUDA-synchronized). ``--impl`` chooses rectlab's modules
(fused kernels on GPU), PyTorch's own ``torch.nn`` modules, or both side by side. This is a
benchmark: it measures and prints, it asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from rectlab import activations, models
from rectlab.gpucheck import TORCH_MODULES  # PyTorch's own module of each activation
from rectlab.training.loop import describe_device, resolve_device

__all__ = ["add_arguments", "main", "measure", "run"]

DEFAULT_ACTIVATIONS = "relu,leaky-relu,prelu-shared,prelu,rrelu,elu,gelu,silu,swish-learnable,mish,smelu"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default="resnet20,resnet56", help="comma-separated model names")
    p.add_argument("--activations", default=DEFAULT_ACTIVATIONS, help="comma-separated activation names")
    p.add_argument(
        "--impl",
        choices=("rectlab", "torch", "both"),
        default="both",
        help="rectlab's modules, torch.nn's, or both side by side",
    )
    p.add_argument("--batch-size", type=int, default=None, help="default 512 on GPU, 64 on CPU")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 30 on GPU, 10 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10 on GPU, 3 on CPU)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", choices=("bf16", "fp32"), default=None, help="autocast dtype (default bf16 on GPU)")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--csv", default=None, help="also write the rows to this CSV file")


def _factory(name: str, impl: str) -> Callable[[int], nn.Module] | None:
    if impl == "torch":
        return TORCH_MODULES.get(name)
    return activations.factory(name)


def _time_steps(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, warmup: int, dtype: torch.dtype | None
) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    device = x.device

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def measure(args: argparse.Namespace) -> list[dict]:
    """Time the training steps; print one line per row as it goes and return the rows."""
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch_size or (512 if gpu else 64)
    steps = args.steps or (30 if gpu else 10)
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 3)
    dtype = {"bf16": torch.bfloat16, "fp32": None}[args.dtype or ("bf16" if gpu else "fp32")]
    channels_last = args.channels_last == "on" or (args.channels_last == "auto" and gpu)
    impls = ["rectlab", "torch"] if args.impl == "both" else [args.impl]
    print(
        f"device: {describe_device(device)} | torch {torch.__version__} | batch {batch} | "
        f"{args.image_size}x{args.image_size} | dtype {args.dtype or ('bf16' if gpu else 'fp32')} | "
        f"channels_last {channels_last} | compile {args.compile} | {steps} timed steps",
        flush=True,
    )
    rows: list[dict] = []
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, args.image_size, args.image_size, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    # Untimed warm-up of the whole process (allocator, thread pools, CPU clocks): without it the first
    # rows of a CPU run come out up to 30% slow and distort every ratio to ReLU.
    warm = models.create(args.models.split(",")[0], activation="relu", num_classes=10, in_channels=3).to(device)
    _time_steps(warm, x, y, 0, 3 * max(warmup, 1), dtype)
    del warm
    header = f"{'model':<10} {'activation':<16} {'impl':<8} {'img/s':>10} {'x ReLU':>8}"
    print(header)
    print("-" * len(header))
    for model_name in args.models.split(","):
        for impl in impls:
            relu_rate = None
            for act in args.activations.split(","):
                make = _factory(act, impl)
                if make is None:
                    continue  # torch.nn has no module for this activation
                torch.manual_seed(0)
                model = models.create(model_name, activation=make, num_classes=10, in_channels=3).to(device)
                if channels_last:
                    model = model.to(memory_format=torch.channels_last)
                if args.compile:
                    model = torch.compile(model)
                seconds = _time_steps(model, x, y, steps, warmup, dtype)
                rate = batch * steps / seconds
                if act == "relu":
                    relu_rate = rate
                ratio = rate / relu_rate if relu_rate else float("nan")
                rows.append(
                    {
                        "device": describe_device(device),
                        "model": model_name,
                        "activation": act,
                        "impl": impl,
                        "batch": batch,
                        "images_per_s": round(rate, 1),
                        "ratio_to_relu": round(ratio, 3),
                    }
                )
                print(f"{model_name:<10} {act:<16} {impl:<8} {rate:>10.0f} {ratio:>8.2f}", flush=True)
    return rows


def run(args: argparse.Namespace) -> int:
    """Measure, print, and write ``--csv``. Returns 0."""
    rows = measure(args)
    if args.csv and rows:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/train.py", description=__doc__)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
