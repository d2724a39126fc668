"""A Hugging Face ``Trainer`` in a rectlab study: activations x seeds, crash-safe, with verdicts.

The training function builds an ordinary ``Trainer``; ``RectlabTrainerCallback`` feeds every evaluation to
``trial.log`` and every checkpoint the ``Trainer`` saves to ``trial.save``, and ``callback.checkpoint()``
resumes a run that was interrupted::

    python examples/huggingface_loop.py --dataset digits --seeds 3 --epochs 5 --out runs/hf-loop

Needs ``transformers`` and ``accelerate``.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

import rectlab
from rectlab import data as rdata
from rectlab.integrations.huggingface import RectlabTrainerCallback


class MLP(nn.Module):
    """A two-hidden-layer MLP that returns what a ``Trainer`` expects: ``{"loss", "logits"}``."""

    def __init__(self, in_features: int, num_classes: int, width: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, num_classes),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def examples(dataset: str, data_dir: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    data = rdata.load(dataset, data_dir=data_dir)
    x, test_x = data.train_x.float().div(255), data.test_x.float().div(255)
    mean, std = x.mean(), x.std()
    train = [{"x": v, "labels": int(y)} for v, y in zip((x - mean) / std, data.train_y)]
    test = [{"x": v, "labels": int(y)} for v, y in zip((test_x - mean) / std, data.test_y)]
    return train, test, x[0].numel(), data.num_classes


def error(prediction: Any) -> dict[str, float]:
    logits, labels = prediction
    return {"error": float(100.0 * np.mean(np.argmax(logits, axis=1) != labels))}


def train(trial: rectlab.study.trial.Trial) -> dict[str, float]:
    """One ``Trainer`` run with this trial's parameters; returns the final ``eval_error`` (%)."""
    p = trial.params
    train_set, test_set, features, classes = examples(p.get("dataset", "digits"), trial.data_dir)
    model = MLP(features, classes, p.get("width", 128))
    model.net = trial.model_hook(model.net, example_input=test_set[0]["x"][None])
    callback = RectlabTrainerCallback(trial)
    args = TrainingArguments(
        output_dir=str(trial.run_dir / "hf"),
        num_train_epochs=p["epochs"],
        per_device_train_batch_size=p.get("batch_size", 64),
        learning_rate=p.get("lr", 1e-3),
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        save_total_limit=1,
        seed=trial.seed,
        report_to=[],
        disable_tqdm=True,
        use_cpu=trial.device.type == "cpu",
        remove_unused_columns=False,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=test_set,
        compute_metrics=error,
        callbacks=[callback],
    )
    trainer.train(resume_from_checkpoint=callback.checkpoint())
    return {"eval_error": trainer.evaluate()["eval_error"]}


def main(function: object) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activations", default="relu,gelu", help="the first is the baseline")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="runs/hf-loop")
    args = parser.parse_args()
    activations = args.activations.split(",")
    study = rectlab.Study(
        args.out,
        grid={"activation": activations},
        seeds=args.seeds,
        baseline={"activation": activations[0]},
        metric="eval_error",
        params={"dataset": args.dataset, "epochs": args.epochs},
        device="cpu",
        name=f"hugging face trainer: {', '.join(activations)} on {args.dataset}",
    )
    result = study.run(function)
    result.print()
    print(f"report: {result.report().html.resolve()}")


if __name__ == "__main__":
    import huggingface_loop  # this file as a module: worker processes import train by name, not from __main__

    main(huggingface_loop.train)
