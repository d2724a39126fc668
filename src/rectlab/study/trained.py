"""The trained model of any checkpoint rectlab writes, rebuilt from the configuration recorded for it.

`load_run_model` reads ``OUT/runs/<hash>/checkpoint.pt`` of ``rectlab compare``, ``run`` and ``reproduce``
(the configuration in the checkpoint, else in the study's ``results.db``, whose SHA-256 of the checkpoint is
checked first) and ``OUT/checkpoint.pt`` of ``rectlab train --out OUT`` (the configuration in the checkpoint,
else in ``metrics.json`` beside it).
"""

from __future__ import annotations

import json
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


def _study_run(path: Path) -> tuple[Path, dict[str, Any]] | None:
    """The study database beside checkpoint ``path`` and the run that wrote it, or None outside a study.

    Raises:
        InputError: the database has no such run, or the checkpoint fails the SHA-256 the database
            committed for it (damaged or replaced after training).
    """
    db = path.parent.parent.parent / "results.db"
    if not db.is_file():
        return None
    store = Store(db, readonly=True)
    run_hash = path.parent.name
    run = next((r for r in store.runs() if r["hash"] == run_hash), None)
    if run is None:
        raise InputError(f"{db} has no run {run_hash}; the checkpoint's folder name must be its run hash")
    _, sha = store.checkpoint(run_hash)
    if sha is not None and path.name == "checkpoint.pt" and sha256_file(path) != sha:
        raise InputError(
            f"{path} does not match the checksum {db} committed for it (damaged or replaced after "
            f"training), so its weights cannot be trusted; restore it from a backup (the run's results "
            f"in {db} are unaffected)"
        )
    return db, run


def _run_config(path: Path, state: dict[str, Any], study: tuple[Path, dict[str, Any]] | None) -> dict[str, Any]:
    """The config of the run that wrote checkpoint ``path``: stored in it (current checkpoints), else in
    ``metrics.json`` beside it (``rectlab train --out``), else in the study's ``results.db``."""
    if isinstance(state.get("config"), dict):
        return state["config"]
    metrics = path.parent / "metrics.json"
    if metrics.is_file():
        return json.loads(metrics.read_text())["config"]
    if study is None:
        raise MissingFileError(
            f"{path} holds no config, and neither {metrics} nor a results.db of its study exists: "
            "pass a checkpoint that rectlab compare/run/reproduce (OUT/runs/<hash>/) or train "
            "--out wrote"
        )
    return study[1]["config"]


def load_run_model(checkpoint: str | Path, data_dir: str | None = None) -> tuple[nn.Module, Tensor, Any]:
    """Rebuild the trained model of a checkpoint that rectlab wrote.

    Args:
        checkpoint: ``OUT/runs/<hash>/checkpoint.pt`` of ``rectlab compare``/``run``/``reproduce``, or
            ``OUT/checkpoint.pt`` of ``rectlab train --out OUT`` (or the folder holding it).
        data_dir: where the run's dataset is looked for when the checkpoint does not record the data's shape.

    Returns:
        ``(model, example_input, config)``: the model in evaluation mode with the trained weights, a batch of
        two zero inputs shaped like the data, and the run's [TrainConfig][rectlab.training.TrainConfig].

    Raises:
        MissingFileError: no checkpoint there, or no record of its run's config.
        InputError: the checkpoint and its recorded config do not belong together, or the checkpoint fails
            its study's checksum.
    """
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise MissingFileError(
            f"{path} not found: pass a checkpoint.pt that rectlab wrote (OUT/runs/<hash>/ of "
            "compare, run or reproduce, or the --out folder of train)"
        )
    study = _study_run(path)
    state = torch.load(path, map_location="cpu", weights_only=False)
    config = from_dict(_run_config(path, state, study))
    if state.get("config_hash") not in (None, config_hash(config)):
        raise InputError(f"{path} was written by another configuration than the one recorded for it")
    shape = state.get("data")
    if shape is None:  # older checkpoints: the data's shape comes from the data
        data = rdata.load(config.dataset, data_dir=data_dir or config.data_dir)
        shape = {"num_classes": data.num_classes, "in_channels": data.in_channels, "image_size": data.image_size}
    example = torch.zeros(2, shape["in_channels"], *shape["image_size"])
    model, _ = build_model(
        config.replace(device="cpu", backend="torch"), shape["num_classes"], shape["in_channels"], example
    )
    model.load_state_dict(state["model"])
    return model.eval(), example, config
