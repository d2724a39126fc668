"""A Lightning callback that records a `rectlab.study.trial.Trial`: epochs, checkpoints and resume.

Inside the training function of a `rectlab.Study`::

    def train(trial):
        model = trial.model_hook(MyLightningModule(lr=trial.params["lr"]))
        callback = RectlabCallback(trial)
        trainer = lightning.Trainer(max_epochs=trial.params["epochs"], callbacks=[callback], logger=False,
                                    enable_checkpointing=False, deterministic=True)
        trainer.fit(model, train_loader, val_loader, ckpt_path=callback.ckpt_path())  # None: from scratch
        return {k: float(v) for k, v in trainer.callback_metrics.items()}

At the end of every training epoch (after its validation) the callback logs the metrics the module logged
for the epoch (``self.log("val_loss", ...)``; step-level values are left out) with ``trial.log``, then makes
the trainer's full checkpoint (weights, optimizers, schedulers, loop state) durable with ``trial.save``. After
a crash, ``callback.ckpt_path()`` writes the last one back for ``trainer.fit(ckpt_path=...)``.

Needs ``lightning`` (``pip install lightning``), imported when this module is.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl  # optional dependency: this module is imported only by its users
import torch

from ..errors import InputError
from ..study.trial import Trial

__all__ = ["RectlabCallback"]

CHECKPOINT_KEY = "lightning_checkpoint"


def epoch_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """The epoch's logged metrics as numbers (one-element tensors; ``*_step`` values left out)."""
    out: dict[str, float] = {}
    for key, raw in trainer.callback_metrics.items():
        if key.endswith("_step"):
            continue
        value: Any = raw
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)):
            out[key.removesuffix("_epoch")] = float(value)
    return out


class RectlabCallback(pl.Callback):
    """Log each epoch's metrics to ``trial`` and save the trainer's checkpoint with it.

    Args:
        trial: the `Trial` the study's training function received.
        save: also ``trial.save`` the trainer's checkpoint every ``every`` epochs (what resuming needs).
        every: save every this many epochs (and at the last one).
    """

    def __init__(self, trial: Trial, *, save: bool = True, every: int = 1) -> None:
        super().__init__()
        if every < 1:
            raise InputError(f"every must be >= 1, got {every}")
        self.trial, self.save, self.every = trial, save, every

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch + 1
        metrics = epoch_metrics(trainer)
        self.trial.log(epoch, **{k: v for k, v in metrics.items() if math.isfinite(v) or "loss" in k})
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        if self.save and (epoch % self.every == 0 or last) and trainer.is_global_zero:
            path = self.trial.run_dir / "lightning-save.ckpt"
            trainer.save_checkpoint(path)
            state = torch.load(path, map_location="cpu", weights_only=False)
            path.unlink()
            self.trial.save({CHECKPOINT_KEY: state})

    def ckpt_path(self) -> str | None:
        """The checkpoint to resume from, for ``trainer.fit(..., ckpt_path=callback.ckpt_path())``: the state of
        the trial's last save written back to a file (None for a fresh run)."""
        state: Any = self.trial.load()
        if state is None:
            return None
        path = self.trial.run_dir / "lightning-resume.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state[CHECKPOINT_KEY], path)
        return str(path)
