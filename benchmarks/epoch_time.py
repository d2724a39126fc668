"""Seconds per training epoch (training steps only, one thread) of ReLU and PReLU runs on Fashion-MNIST.

The main job's target: PReLU within 1.15x of ReLU's time per epoch. Epochs of the two activations are
interleaved and the minimum of each is compared (other jobs only ever add time). Measures and prints.

    PYTHONPATH=src python benchmarks/epoch_time.py mlp 3        # the main job's model (compare's defaults)
    PYTHONPATH=src python benchmarks/epoch_time.py small-cnn 2
"""

from __future__ import annotations

import argparse

import torch

from rectlab import data as rdata
from rectlab.training import TrainConfig, train_one


def main(model: str = "mlp", rounds: int = 3) -> None:
    torch.set_num_threads(1)
    data = rdata.load("fashion-mnist")
    base = dict(model=model, dataset="fashion-mnist", epochs=1, device="cpu", augment=False)
    if model == "mlp":  # rectlab compare's defaults
        base.update(batch_size=256, lr=0.1)
    seconds: dict[str, list[float]] = {"relu": [], "prelu": []}
    for _ in range(rounds):
        for act in seconds:
            seconds[act].append(train_one(TrainConfig(**base, activation=act), data=data).metrics[0]["seconds"])
    shown = {k: [round(v, 2) for v in vs] for k, vs in seconds.items()}
    ratio = min(seconds["prelu"]) / min(seconds["relu"])
    print(f"{model}: seconds per epoch {shown}; PReLU / ReLU (minima) {ratio:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python benchmarks/epoch_time.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", choices=("mlp", "small-cnn"), default="mlp", help="default mlp")
    parser.add_argument("rounds", nargs="?", type=int, default=3, help="epochs timed per activation (default 3)")
    args = parser.parse_args()
    main(args.model, args.rounds)
