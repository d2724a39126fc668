"""A Hugging Face ``TrainerCallback`` that records a `rectlab.study.trial.Trial`: epochs, checkpoints, resume.

Inside the training function of a `rectlab.Study`::

    def train(trial):
        callback = RectlabTrainerCallback(trial)
        args = TrainingArguments(output_dir=str(trial.run_dir / "hf"), num_train_epochs=trial.params["epochs"],
                                 eval_strategy="epoch", save_strategy="epoch", seed=trial.seed, report_to=[])
        trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=test,
                          compute_metrics=metrics, callbacks=[callback])
        trainer.train(resume_from_checkpoint=callback.checkpoint())    # None: from scratch
        return trainer.evaluate()

Every evaluation's metrics (``eval_loss``, ``eval_accuracy`` ...) and the last training loss (``loss``) are
logged with ``trial.log`` for the epoch they belong to; every checkpoint the ``Trainer`` saves (its whole
folder: weights, optimizer, scheduler, RNG and trainer state) is made durable with ``trial.save``. After a
crash, ``callback.checkpoint()`` writes the last one back for ``trainer.train(resume_from_checkpoint=...)``.
Use ``eval_strategy`` and ``save_strategy`` ``"epoch"`` so that each save follows its epoch's evaluation.

Needs ``transformers`` and ``accelerate`` (``pip install transformers accelerate``), imported when this
module is.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback  # optional dependency: this module is imported only by its users

from ..study.trial import Trial

__all__ = ["RectlabTrainerCallback"]

FILES_KEY = "huggingface_checkpoint"
_SKIP = ("epoch", "total_flos", "step")
_NOISE = ("_runtime", "_per_second")  # wall-clock throughput: differs from run to run


class RectlabTrainerCallback(TrainerCallback):
    """Log each evaluation to ``trial`` and save each of the ``Trainer``'s checkpoints with it.

    Args:
        trial: the `Trial` the study's training function received.
    """

    def __init__(self, trial: Trial) -> None:
        self.trial = trial
        self._train: dict[str, float] = {}
        self._training = False

    def _keep(self, key: str, value: Any) -> bool:
        return isinstance(value, (int, float)) and key not in _SKIP and not key.endswith(_NOISE)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = False  # an evaluate() after training belongs to no epoch: the function returns it

    def _epoch(self, state: Any) -> int:
        return max(1, int(math.ceil((state.epoch or 0) - 1e-6)))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        for key, value in (logs or {}).items():  # the training loss as it goes; logged with the next evaluation
            if (
                self._training
                and self._keep(key, value)
                and not key.startswith("eval_")
                and not key.startswith("train_")
            ):
                self._train["train_loss" if key == "loss" else key] = float(value)

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not self._training:
            return
        values = {k: float(v) for k, v in (metrics or {}).items() if self._keep(k, v)}
        self.trial.log(self._epoch(state), **self._train, **values)
        self._train = {}

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if self._train:  # a save with no evaluation before it: log what there is
            self.trial.log(self._epoch(state), **self._train)
            self._train = {}
        files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        self.trial.save({FILES_KEY: files, "name": folder.name})

    def checkpoint(self) -> str | None:
        """The checkpoint folder to resume from, for ``trainer.train(resume_from_checkpoint=...)``: the trial's
        last save written back (None for a fresh run)."""
        state: Any = self.trial.load()
        if state is None:
            return None
        folder = self.trial.run_dir / "hf-resume" / state["name"]
        shutil.rmtree(folder.parent, ignore_errors=True)
        for name, data in state[FILES_KEY].items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return str(folder)
