"""Your own training code in a rectlab study: `Study`, and callbacks for Lightning and Hugging Face.

* `Study` (also ``rectlab.Study``) runs any function ``train(trial)`` over a grid of activations (and any
  other parameters) x seeds, with the store, resume, lock, executors, statistics and report of rectlab's
  built-in studies;
* `rectlab.integrations.lightning.RectlabCallback` feeds ``trial.log`` and ``trial.save`` from a Lightning
  ``Trainer`` (``pip install lightning``);
* `rectlab.integrations.huggingface.RectlabTrainerCallback` does the same for a Hugging Face ``Trainer``
  (``pip install transformers accelerate``).

The callbacks import their framework only when used.
"""

from __future__ import annotations

from .study import Study

__all__ = ["Study"]
