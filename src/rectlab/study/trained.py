"""A study run's trained model, rebuilt from its checkpoint and the configuration in the study's store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import data as rdata
from ..errors import InputError, MissingFileError
from ..files import sha256_file
from ..training.config import config_hash, from_dict
from ..training.loop import build_model
from .store import Store

__all__ = ["load_run_model"]


def load_run_model(checkpoint: str | Path, data_dir: str | None = None) -> tuple[nn.Module, Tensor, Any]:
    """Rebuild a study run's trained model from its checkpoint.

    Args:
        checkpoint: ``OUT/runs/<hash>/checkpoint.pt`` of ``rectlab compare``/``run``/``reproduce`` (or its
            folder). The run's configuration is read from ``OUT/results.db``.
        data_dir: where the run's dataset is looked for (its image shape and classes size the model).

    Returns:
        ``(model, example_input, config)``: the model in evaluation mode with the trained weights, a batch of
        two zero images shaped like the data, and the run's :class:`~rectlab.training.config.TrainConfig`.
    """
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise MissingFileError(f"{path} not found: pass OUT/runs/<hash>/checkpoint.pt of a study run")
    run_hash = path.parent.name
    db = path.parent.parent.parent / "results.db"
    if not db.is_file():
        raise MissingFileError(f"{db} not found: the checkpoint must sit in a study folder (OUT/runs/<hash>/)")
    store = Store(db, readonly=True)
    run = next((r for r in store.runs() if r["hash"] == run_hash), None)
    if run is None:
        raise InputError(f"{db} has no run {run_hash}; the checkpoint's folder name must be its run hash")
    _, sha = store.checkpoint(run_hash)
    if sha is not None and path.name == "checkpoint.pt" and sha256_file(path) != sha:
        raise InputError(f"{path} does not match the checksum {db} committed for it (damaged or replaced after "
                         f"training), so its weights cannot be trusted; restore it from a backup (the run's results "
                         f"in {db} are unaffected)")
    config = from_dict(run["config"])
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("config_hash") not in (None, config_hash(config)):
        raise InputError(f"{path} was written by another configuration than run {run_hash} in {db}")
    data = rdata.load(config.dataset, data_dir=data_dir or config.data_dir)
    example = torch.zeros(2, data.in_channels, *data.image_size)
    model, _ = build_model(config.replace(device="cpu"), data.num_classes, data.in_channels, example)
    model.load_state_dict(state["model"])
    return model.eval(), example, config
