"""Training one model: the run configuration, the loop, the step, and what runs beside it.

* :mod:`~rectlab.training.config` — :class:`TrainConfig`, the frozen run configuration, and its hash;
* :mod:`~rectlab.training.loop` — :func:`train_one`, one run top to bottom, with checkpoints and resume;
* :mod:`~rectlab.training.step` — the training step, eager or replayed as a CUDA graph;
* :mod:`~rectlab.training.pruning` — global magnitude pruning as a run option;
* :mod:`~rectlab.training.tracking` — experiment trackers (TensorBoard) as epoch callbacks.

Examples:
    >>> from rectlab.training import TrainConfig, train_one
    >>> TrainConfig(model="mlp", activation="prelu", dataset="digits").activation
    'prelu'
"""

from __future__ import annotations

from .config import ConfigError, TrainConfig, config_hash, from_dict
from .loop import Diverged, EpochState, RunResult, train_one

__all__ = ["ConfigError", "Diverged", "EpochState", "RunResult", "TrainConfig", "config_hash", "from_dict", "train_one"]
