"""Your own PyTorch training loop, judged by rectlab: does PReLU or GELU beat ReLU on Fashion-MNIST?

The function ``train(trial)`` is an ordinary PyTorch loop (its own model, optimizer, schedule and
evaluation; it never touches rectlab's trainer). rectlab runs it over activations x seeds in worker
processes, records every epoch exactly once, resumes it after a crash from its last ``trial.save``, and
judges every activation against ReLU with paired statistics::

    python examples/own_loop.py --seeds 5 --epochs 10 --workers 2 --out runs/own-loop

Run it again after stopping it (Ctrl-C, a crash, ``kill -9``): finished runs are kept, interrupted ones
continue from their last finished epoch. The same study from a spec file: ``examples/own_loop.toml``.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import rectlab
from rectlab import data as rdata


def make_model(in_features: int, num_classes: int, width: int) -> nn.Module:
    """A two-hidden-layer MLP with ReLUs (``trial.model_hook`` swaps them for the cell's activation)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, num_classes),
    )


def train(trial: rectlab.study.trial.Trial) -> dict[str, float]:
    """Train one model with this trial's parameters; returns the final test error (%)."""
    p = trial.params
    data = rdata.load(p.get("dataset", "fashion-mnist"), data_dir=trial.data_dir)
    limit = p.get("train_limit")
    x, y = data.train_x[:limit].float().div(255), data.train_y[:limit]
    mean, std = x.mean(), x.std()
    x = ((x - mean) / std).to(trial.device)
    y = y.to(trial.device)
    test_x = ((data.test_x.float().div(255) - mean) / std).to(trial.device)
    test_y = data.test_y.to(trial.device)

    model = make_model(x[0].numel(), data.num_classes, p.get("width", 256))
    model = trial.model_hook(model, example_input=x[:2].cpu()).to(trial.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=p.get("lr", 0.1), momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=p["epochs"])
    batch_size = p.get("batch_size", 256)

    start = 0
    state = trial.load()  # the last trial.save of this run (after a crash), or None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start = state["epoch"]

    test_error = float("nan")
    for epoch in range(start, p["epochs"]):
        model.train()
        order = torch.randperm(len(x), device=x.device)
        loss_sum, seen = 0.0, 0
        for i in range(0, len(x) - batch_size + 1 if len(x) > batch_size else 1, batch_size):
            batch = order[i : i + batch_size]
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(batch)
            seen += len(batch)
        schedule.step()
        model.eval()
        with torch.no_grad():
            wrong = sum(
                int((model(test_x[i : i + 1024]).argmax(1) != test_y[i : i + 1024]).sum())
                for i in range(0, len(test_x), 1024)
            )
        test_error = 100.0 * wrong / len(test_x)
        trial.log(epoch + 1, train_loss=loss_sum / seen, test_error=test_error)
        trial.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "epoch": epoch + 1,
            }
        )
    return {"test_error": test_error}


def main(function: object) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activations", default="relu,prelu,gelu", help="the first is the baseline")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-limit", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time (worker processes)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="runs/own-loop")
    args = parser.parse_args()
    activations = args.activations.split(",")
    study = rectlab.Study(
        args.out,
        grid={"activation": activations},
        seeds=args.seeds,
        baseline={"activation": activations[0]},
        metric="test_error",
        goal="min",
        params={"dataset": args.dataset, "epochs": args.epochs, "train_limit": args.train_limit},
        device=args.device,
        name=f"own loop: {', '.join(activations)} on {args.dataset}",
    )
    result = study.run(function, executor="processes", workers=args.workers)
    result.print()
    print(result.comparisons[["cell", "estimate", "ci_low", "ci_high", "p_holm", "verdict"]].to_string(index=False))
    print(f"report: {result.report().html.resolve()}")


if __name__ == "__main__":
    # Worker processes import the training function by name, so pass it from this file imported as the module
    # own_loop (the script's folder is on the path), not from __main__.
    import own_loop

    main(own_loop.train)
