"""Optimizer parameter groups: activation parameters are never weight-decayed.

He et al. 2015 (arXiv 1502.01852, section 2.1) do not use weight decay on PReLU's slopes ``a``: decay
pushes ``a`` towards zero, biasing PReLU towards ReLU. The same holds for any learned activation parameter
(Swish's beta). Excluding normalization and bias parameters as well is common practice and optional here.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .activations.kinds import module_op
from .errors import InputError

__all__ = ["GROUP_NAMES", "is_activation_module", "is_norm_module", "param_groups"]

GROUP_NAMES = ("decay", "no_decay_activation", "decay_activation", "no_decay_norm", "no_decay_bias")

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def is_activation_module(module: nn.Module) -> bool:
    """True for activation modules as [`rectlab.surgery.module_op`][rectlab.surgery.module_op] defines them: rectlab's
    activations and torch's (``nn.PReLU`` is the only one of torch's with parameters)."""
    return module_op(module) is not None


def is_norm_module(module: nn.Module) -> bool:
    """True for BatchNorm/InstanceNorm, GroupNorm, LayerNorm (and RMSNorm where torch has it)."""
    rms = getattr(nn, "RMSNorm", None)
    return isinstance(module, _NORMS) or (rms is not None and isinstance(module, rms))


def param_groups(
    model: nn.Module,
    weight_decay: float,
    no_decay_norm_and_bias: bool = False,
    *,
    decay_activation_params: bool = False,
) -> list[dict[str, Any]]:
    """Split the trainable parameters of ``model`` into groups for a ``torch.optim`` optimizer.

    Groups, in this order, empty ones left out:

    * ``"decay"``: everything else, with ``weight_decay``;
    * ``"no_decay_activation"``: parameters owned by a rectlab ``Activation`` or ``torch.nn.PReLU``
      (PReLU slopes, learnable Swish beta), weight decay 0 (He et al. 2015);
    * with ``decay_activation_params=True`` (an ablation of that choice) they form ``"decay_activation"``
      instead, with ``weight_decay``;
    * with ``no_decay_norm_and_bias=True``, ``"no_decay_norm"`` (parameters of normalization layers) and
      ``"no_decay_bias"`` (every other parameter named ``bias``), weight decay 0.

    Each group also carries ``"param_names"`` (for logs and tests). Parameters with
    ``requires_grad=False`` are left out; a parameter shared by several modules is counted once.

    Args:
        model: the model.
        weight_decay: decay for the ``"decay"`` group, >= 0.
        no_decay_norm_and_bias: also exempt normalization and bias parameters.
        decay_activation_params: decay activation parameters too (to measure what He et al. avoided).

    Returns:
        A list of dicts with keys ``"name"``, ``"params"``, ``"param_names"``, ``"weight_decay"``.

    Examples:
        >>> import torch
        >>> from rectlab import models
        >>> net = models.create("resnet20", activation="prelu")
        >>> opt = torch.optim.SGD(param_groups(net, 1e-4), lr=0.1, momentum=0.9)
        >>> [(g["name"], len(g["params"])) for g in opt.param_groups]
        [('decay', 59), ('no_decay_activation', 19)]
    """
    if weight_decay < 0:
        raise InputError(f"weight_decay must be >= 0, got {weight_decay}")
    buckets: dict[str, list[tuple[str, nn.Parameter]]] = {name: [] for name in GROUP_NAMES}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if id(param) in seen or not param.requires_grad:
                continue
            seen.add(id(param))
            full = f"{module_name}.{param_name}" if module_name else param_name
            if is_activation_module(module):
                key = "decay_activation" if decay_activation_params else "no_decay_activation"
                buckets[key].append((full, param))
            elif no_decay_norm_and_bias and is_norm_module(module):
                buckets["no_decay_norm"].append((full, param))
            elif no_decay_norm_and_bias and param_name == "bias":
                buckets["no_decay_bias"].append((full, param))
            else:
                buckets["decay"].append((full, param))
    groups = []
    for name in GROUP_NAMES:
        if buckets[name]:
            groups.append(
                {
                    "name": name,
                    "params": [p for _, p in buckets[name]],
                    "param_names": [n for n, _ in buckets[name]],
                    "weight_decay": weight_decay if name in ("decay", "decay_activation") else 0.0,
                }
            )
    return groups
