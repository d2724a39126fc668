"""Trained models of a finished study, rebuilt from their configs and epoch checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data import augment
from ..errors import InputError, MissingFileError
from ..training.config import from_dict
from ..training.loop import build_model

__all__ = ["load_trained", "test_batches"]


def test_batches(data: Any, test_limit: int | None, batch_size: int = 512) -> tuple[list[Tensor], Tensor]:
    """The normalised test inputs a run was evaluated on (the first ``test_limit``) and their labels (CPU)."""
    if not getattr(data, "in_memory", True):
        raise InputError(f"{data.name}: prediction probes need an in-memory dataset (not an image folder)")
    x, y = data.test_x[:test_limit], data.test_y[:test_limit]
    return [augment.normalize(x[i : i + batch_size], data.mean, data.std) for i in range(0, len(x), batch_size)], y


def load_trained(run: Mapping[str, Any], part_dir: str | Path, data: Any) -> nn.Module:
    """Rebuild a finished run's model on the CPU and load its last checkpoint.

    Args:
        run: a run record (``rectlab.study.Store.runs()``: needs ``hash`` and ``config``).
        part_dir: the study directory holding ``runs/<hash>/checkpoint.pt``.
        data: the run's dataset (for the class and channel counts).

    Raises:
        FileNotFoundError: when the checkpoint is missing (the message names it).
    """
    path = Path(part_dir) / "runs" / run["hash"] / "checkpoint.pt"
    if not path.is_file():
        raise MissingFileError(
            f"{path} is missing: the prediction analysis needs the run's checkpoint; "
            "re-run the study without deleting runs/"
        )
    config = from_dict({**run["config"], "device": "cpu"})
    example = augment.normalize(data.train_x[:2], data.mean, data.std)
    torch.manual_seed(config.seed)
    model, _ = build_model(config, data.num_classes, data.in_channels, example)
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    return model.eval()
