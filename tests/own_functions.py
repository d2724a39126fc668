"""Training functions for the function-study tests (tests/test_own_loop.py, test_analysis.py): not a test module.

``tiny`` trains a small MLP on digits with its own loop; ``params["save_every"]`` saves every that many
epochs; with ``$OWN_CRASH_AFTER=e`` it raises after logging epoch e (once per run: a marker file in the run's
folder), as a crash after that epoch would.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from rectlab import data as rdata


def tiny(trial):
    p = trial.params
    data = rdata.load("digits")
    x, y = data.train_x.float().div(255).flatten(1)[:512], data.train_y[:512]
    tx, ty = data.test_x.float().div(255).flatten(1), data.test_y
    model = trial.model_hook(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)))
    opt = torch.optim.SGD(model.parameters(), lr=p.get("lr", 0.5), momentum=0.9)
    state = trial.load()
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"]
    crash = int(os.environ.get("OWN_CRASH_AFTER", "0"))
    marker = trial.run_dir / "crashed"
    error = float("nan")
    for epoch in range(start, p["epochs"]):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            batch = order[i : i + 64]
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            error = 100.0 * float((model(tx).argmax(1) != ty).float().mean())
        trial.log(epoch + 1, train_loss=float(loss.detach()), test_error=error)
        if epoch + 1 == crash and not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            raise RuntimeError(f"simulated crash after epoch {crash}")
        if (epoch + 1) % p.get("save_every", 1) == 0:
            trial.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1})
    return {"test_error": error}


def diverging(trial):
    trial.log(1, train_loss=1.0)
    trial.save({"epoch": 1})
    trial.log(2, train_loss=float("nan"))
    return {"test_error": 0.0}


def failing(trial):
    raise ValueError("a bug in the user's code")


def returns_a_list(trial):
    return [1.0]


def scores(trial):
    """No training: a score that depends on the cell and the seed (for statistics and goal max)."""
    bonus = {"relu": 0.0, "gelu": 2.0, "elu": 0.1}[trial.params["activation"]]
    return {"accuracy": 90.0 + bonus + 0.5 * ((trial.seed * 7919) % 5) / 4 + 0.01 * trial.seed}
