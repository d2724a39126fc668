"""Experiment trackers as epoch callbacks of :func:`rectlab.training.loop.train_one`: TensorBoard.

``rectlab compare ... --tensorboard`` (also ``run`` and ``reproduce``) writes one TensorBoard run per study
run into ``OUT/tensorboard/<cell>-seed<N>/``; look at them with ``tensorboard --logdir OUT/tensorboard``.
From Python::

    from rectlab.training.tracking import TensorBoardLogger
    train_one(config, callbacks=[TensorBoardLogger("tb/prelu-seed0")])

Per epoch it logs every scalar metric of the epoch row (losses, errors, learning rate, seconds and whatever
probes added), the learned activation parameters of every layer as histograms (PReLU slopes, Swish betas;
He et al. 2015, Table 1) with their means as scalars, and the dead neuron rates (whole network and per
activation site; Liu et al. 2022's dynamic rate too), measured with :class:`rectlab.probes.DeadNeurons`
on the first training examples unless the run's own ``dead-neurons`` probe already did. Runs that are
resumed continue their event files. W&B and MLflow are not built in: pass your own epoch callback.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, MissingPackageError
from ..probes import DeadNeurons, probe_batches, probe_sites, slope_table

__all__ = ["TRACKERS", "TensorBoardLogger", "callbacks", "check_trackers", "run_label"]

TRACKERS = ("tensorboard",)

# Epoch-row keys -> TensorBoard tags: grouped as loss/, error/ and time/ panels.
_TAGS = {
    "train_loss": "loss/train", "test_loss": "loss/test", "train_error": "error/train", "test_error": "error/test",
    "test_top5_error": "error/test_top5", "seconds": "time/seconds_per_epoch", "lr": "optim/lr",
}


def _summary_writer() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional: pip install 'rectlab[tracking]'
    except ImportError:
        raise MissingPackageError("--tensorboard needs the tensorboard package: pip install 'rectlab[tracking]'") \
            from None
    return SummaryWriter


def check_trackers(names: Sequence[str]) -> list[str]:
    """Validate tracker names (and that their package is installed) before any run starts."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise InputError(f"unknown tracker(s) {', '.join(map(repr, unknown))}; known: {', '.join(TRACKERS)}")
    if "tensorboard" in names:
        _summary_writer()
    return names


class TensorBoardLogger:
    """Epoch callback writing TensorBoard event files into ``log_dir`` (see the module docstring).

    Args:
        log_dir: the run's folder of event files.
        dead_neurons: measure the dead neuron rates when no ``dead-neurons`` probe did.
        probe_limit: training examples per dead-neuron pass.
    """

    def __init__(self, log_dir: str | Path, *, dead_neurons: bool = True, probe_limit: int = 512) -> None:
        self.log_dir = Path(log_dir)
        self.dead_neurons = dead_neurons
        self.probe_limit = probe_limit
        self._writer: Any = None

    def __getstate__(self) -> dict[str, Any]:  # picklable for worker processes: the writer is opened there
        return {**self.__dict__, "_writer": None}

    def writer(self) -> Any:
        if self._writer is None:
            self._writer = _summary_writer()(log_dir=str(self.log_dir))
        return self._writer

    def __call__(self, state: Any) -> None:
        w = self.writer()
        step = state.epoch
        if step == 1:
            w.add_text("config", "```\n" + json.dumps(state.config.to_dict(), indent=1, default=str) + "\n```", 0)
        for key, value in state.metrics.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                w.add_scalar(_TAGS.get(key, key), value, step)
        self._slopes(w, state.model, step)
        if self.dead_neurons and "dnr" not in state.metrics:
            self._dead_neurons(w, state, step)
        w.flush()
        if state.epoch >= state.config.epochs:
            self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @staticmethod
    def _slopes(w: Any, model: torch.nn.Module, step: int) -> None:
        for row in slope_table(model, values=True):
            name = "prelu_slope" if row["kind"] == "prelu" else "swish_beta"
            w.add_histogram(f"{name}/{row['layer']}", torch.tensor(row["values"]), step)
            w.add_scalar(f"{name}_mean/{row['layer']}", row["mean"], step)

    def _dead_neurons(self, w: Any, state: Any, step: int) -> None:
        if not probe_sites(state.model):
            return
        model = state.model
        was_training = model.training
        model.eval()
        try:
            with DeadNeurons(model) as probe, torch.no_grad():
                for x in probe_batches(state.data, state.config, state.device, self.probe_limit):
                    model(x)
        finally:
            model.train(was_training)
        summary = probe.summary()
        w.add_scalar("dead_neurons/rate", summary["dead_rate"], step)
        w.add_scalar("dead_neurons/dynamic_rate", summary["dynamic_rate"], step)
        rows = list(probe.result().values())
        for r in rows:
            w.add_scalar(f"dead_neurons_per_site/{r.site}", r.dead_rate, step)
        if rows:
            w.add_histogram("dead_neurons/per_site_rate", torch.tensor([r.dead_rate for r in rows]), step)


def run_label(cell_label: str, seed: int) -> str:
    """A folder name for one study run: ``prelu-seed0``, ``activation=prelu_lr=0.01-seed1``."""
    text = re.sub(r"[^A-Za-z0-9.=+-]+", "_", cell_label.replace(", ", "_")).strip("_") or "run"
    return f"{text}-seed{seed}"


def callbacks(names: Sequence[str], out_dir: str | Path, cell_label: str, seed: int) -> list[Any]:
    """The epoch callbacks of the trackers ``names`` for one study run in ``out_dir``."""
    out = []
    for name in check_trackers(names):
        if name == "tensorboard":
            out.append(TensorBoardLogger(Path(out_dir) / "tensorboard" / run_label(cell_label, seed)))
    return out
