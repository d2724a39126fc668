"""A Lightning training loop in a rectlab study: activations x seeds, crash-safe, with verdicts.

The training function builds an ordinary ``LightningModule`` and ``Trainer``; ``RectlabCallback`` feeds each
epoch's logged metrics to ``trial.log`` and the trainer's checkpoint to ``trial.save``, and
``callback.ckpt_path()`` resumes a run that was interrupted::

    python examples/lightning_loop.py --dataset digits --seeds 3 --epochs 5 --out runs/lightning-loop
"""

from __future__ import annotations

import argparse

import lightning
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import rectlab
from rectlab import data as rdata
from rectlab.integrations.lightning import RectlabCallback


class Classifier(lightning.LightningModule):
    """A two-hidden-layer MLP classifier with ReLUs (``trial.model_hook`` swaps them for the cell's activation)."""

    def __init__(self, in_features: int, num_classes: int, width: int = 128, lr: float = 0.05) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_error", 100.0 * (logits.argmax(1) != y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def loaders(dataset: str, data_dir: str | None, batch_size: int) -> tuple[DataLoader, DataLoader, int, int]:
    data = rdata.load(dataset, data_dir=data_dir)
    x, test_x = data.train_x.float().div(255), data.test_x.float().div(255)
    mean, std = x.mean(), x.std()
    train = TensorDataset((x - mean) / std, data.train_y)
    test = TensorDataset((test_x - mean) / std, data.test_y)
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True),
        DataLoader(test, batch_size=1024),
        x[0].numel(),
        data.num_classes,
    )


def train(trial: rectlab.study.trial.Trial) -> dict[str, float]:
    """One Lightning run with this trial's parameters; returns the final validation error (%)."""
    p = trial.params
    train_loader, val_loader, features, classes = loaders(
        p.get("dataset", "digits"), trial.data_dir, p.get("batch_size", 64)
    )
    module = Classifier(features, classes, p.get("width", 128), p.get("lr", 0.05))
    module.net = trial.model_hook(module.net, example_input=next(iter(val_loader))[0][:2])
    callback = RectlabCallback(trial)
    trainer = lightning.Trainer(
        max_epochs=p["epochs"],
        callbacks=[callback],
        accelerator=trial.device.type,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
    )
    trainer.fit(module, train_loader, val_loader, ckpt_path=callback.ckpt_path())
    return {"val_error": float(trainer.callback_metrics["val_error"])}


def main(function: object) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activations", default="relu,gelu", help="the first is the baseline")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--executor", default="local", choices=("local", "processes"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="runs/lightning-loop")
    args = parser.parse_args()
    activations = args.activations.split(",")
    study = rectlab.Study(
        args.out,
        grid={"activation": activations},
        seeds=args.seeds,
        baseline={"activation": activations[0]},
        metric="val_error",
        params={"dataset": args.dataset, "epochs": args.epochs},
        device="cpu",
        name=f"lightning: {', '.join(activations)} on {args.dataset}",
    )
    result = study.run(function, executor=args.executor, workers=args.workers)
    result.print()
    print(f"report: {result.report().html.resolve()}")


if __name__ == "__main__":
    import lightning_loop  # this file as a module: worker processes import train by name, not from __main__

    main(lightning_loop.train)
