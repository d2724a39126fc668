"""Small-CNN training-step CPU time per activation implementation (batch 128, 28x28; the main job trains a
2x256 MLP, see benchmarks/epoch_time.py).

Measures one thread's CPU time (user + system) of a full SGD step, so that other jobs on the machine do not
inflate it; the implementations are interleaved round by round. It measures and prints; it asserts nothing.

    PYTHONPATH=src python benchmarks/cpu_step.py [rounds]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from rectlab import activations as A
from rectlab.models.small_cnn import SmallCNN

ACTIVATIONS = {
    "relu": "relu",
    "nn.ReLU": lambda c: nn.ReLU(),
    "prelu": "prelu",
    "prelu(spec)": lambda c: A.PReLU(c, backend="torch"),
    "nn.PReLU": lambda c: nn.PReLU(c),
    "smelu": "smelu",
    "smelu(spec)": lambda c: A.SmeLU(backend="torch"),
    "swish-learnable": "swish-learnable",
    "swish-learnable(spec)": lambda c: A.SwishLearnable(backend="torch"),
    "mish": "mish",
    "nn.Mish": lambda c: nn.Mish(),
}


def main(rounds: int = 15) -> None:
    torch.set_num_threads(1)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    loss_fn = nn.CrossEntropyLoss()
    runs = {}
    for name, act in ACTIVATIONS.items():
        torch.manual_seed(0)
        model = SmallCNN(act)
        runs[name] = (model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))

    def step(model: nn.Module, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    for model, opt in runs.values():
        for _ in range(3):
            step(model, opt)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (model, opt) in runs.items():
            step(model, opt)  # untimed: the allocator settles to this model
            t0 = time.thread_time()
            step(model, opt)
            times[name].append(time.thread_time() - t0)
    base = min(times["nn.ReLU"])
    print(f"torch {torch.__version__}, 1 thread, thread CPU time of one SGD step, {rounds} rounds")
    for name, t in times.items():
        print(
            f"{name:24s} min {min(t) * 1e3:7.2f} ms  median {statistics.median(t) * 1e3:7.2f} ms  "
            f"x nn.ReLU {min(t) / base:5.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python benchmarks/cpu_step.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("rounds", nargs="?", type=int, default=15, help="measurement rounds (default 15)")
    main(parser.parse_args().rounds)
