"""Training one model: the run configuration, the loop, the step, and what runs beside it.

* [`config`][rectlab.training.config] — [`TrainConfig`][rectlab.training.TrainConfig], the frozen run configuration, and
  its hash;
* [`loop`][rectlab.training.loop] — [`train_one`][rectlab.training.train_one], one run top to bottom, with checkpoints
  and resume;
* [`step`][rectlab.training.step] — the training step, eager or replayed as a CUDA graph;
* [`pruning`][rectlab.training.pruning] — global magnitude pruning as a run option;
* [`tracking`][rectlab.training.tracking] — experiment trackers (TensorBoard) as epoch callbacks.

Examples:
    >>> from rectlab.training import TrainConfig, train_one
    >>> TrainConfig(model="mlp", activation="prelu", dataset="digits").activation
    'prelu'
"""

from __future__ import annotations

from .config import ConfigError, TrainConfig, config_hash, from_dict
from .loop import Diverged, EpochState, RunResult, train_one

__all__ = ["ConfigError", "Diverged", "EpochState", "RunResult", "TrainConfig", "config_hash", "from_dict", "train_one"]
