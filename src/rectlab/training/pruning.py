"""Global magnitude pruning with fixed masks, as a run option (``TrainConfig.prune_sparsity`` / ``prune_epoch``).

After the evaluation of epoch ``prune_epoch``, [`prune_`][rectlab.training.pruning.prune_] zeroes the ``sparsity``
fraction of all conv and linear weights with the smallest magnitude (global L1, unstructured), and training goes on
with those weights held at zero: one-shot magnitude pruning of a trained network followed by
fine-tuning, the setting where Liu et al. 2022 (arXiv 2212.06145) measure the dynamic dead neuron rate.

The mask is a non-persistent buffer and a forward pre-hook re-applies it before every forward pass, so
the model's ``state_dict`` (and the optimizer's) keeps its dense layout: checkpoints resume like any
other run, and [`restore_`][rectlab.training.pruning.restore_] rebuilds the masks from the zeros a resumed checkpoint
holds.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError

__all__ = ["prunable_layers", "prune_", "restore_", "sparsity"]

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
Layer = nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear


def prunable_layers(model: nn.Module) -> list[Layer]:
    """The conv and linear layers whose weights are pruned, in module order."""
    return [m for m in model.modules() if isinstance(m, _LAYERS)]


def _apply_mask(module: nn.Module, args: tuple) -> None:
    with torch.no_grad():
        module.get_parameter("weight").mul_(module.get_buffer("prune_mask"))


def _install(module: Layer, mask: Tensor) -> None:
    if "prune_mask" in module._buffers:
        module.get_buffer("prune_mask").copy_(mask)
    else:
        module.register_buffer("prune_mask", mask, persistent=False)
        module.register_forward_pre_hook(_apply_mask)
    with torch.no_grad():
        module.weight.mul_(mask)


def prune_(model: nn.Module, amount: float) -> float:
    """Prune ``amount`` of all conv/linear weights by global magnitude, in place; return the achieved sparsity.

    Raises:
        ValueError: for ``amount`` outside [0, 1) or a model without conv/linear layers.
    """
    if not 0 <= amount < 1:
        raise InputError(f"sparsity must be in [0, 1), got {amount}")
    layers = prunable_layers(model)
    if not layers:
        raise InputError(f"{type(model).__name__} has no conv or linear layer to prune")
    if amount > 0:
        magnitudes = torch.cat([m.weight.detach().abs().flatten() for m in layers])
        k = int(round(amount * magnitudes.numel()))
        if k > 0:
            # exactly the k smallest (ties broken by position), as torch.nn.utils.prune.global_unstructured
            keep = torch.ones_like(magnitudes, dtype=torch.bool)
            keep[torch.argsort(magnitudes, stable=True)[:k]] = False
            start = 0
            for m in layers:
                n = m.weight.numel()
                _install(m, keep[start : start + n].view_as(m.weight).to(m.weight.dtype))
                start += n
    return sparsity(model)


def restore_(model: nn.Module) -> float:
    """Re-install the masks of a pruned model loaded from a checkpoint (pruned weights are exactly 0)."""
    for m in prunable_layers(model):
        mask = (m.weight.detach() != 0).to(m.weight.dtype)
        if not bool(mask.all()):
            _install(m, mask)
    return sparsity(model)


def sparsity(model: nn.Module) -> float:
    """The fraction of conv/linear weights that are exactly zero."""
    layers = prunable_layers(model)
    total = sum(m.weight.numel() for m in layers)
    return sum(int((m.weight == 0).sum()) for m in layers) / total if total else 0.0
