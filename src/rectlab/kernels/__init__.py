"""Triton kernels for rectlab's activations, one module per family.

Nothing here is imported by ``import rectlab``: :mod:`rectlab.activations.fused` calls :func:`load` at
the first fused call, which imports Triton and the family module then.

Families:
    ``elementwise``  relu, leaky-relu, rrelu (eval), elu, celu, selu, gelu (erf / tanh), silu, mish,
                     softplus, smelu, helu, gcu: one forward and one backward kernel, the op a constexpr.
    ``prelu``        PReLU, channel-shared and channel-wise, weight gradient reduced in the same pass.
    ``swish``        Swish ``x * sigmoid(beta x)`` with a scalar or per-channel (learnable) beta.
    ``rrelu``        RReLU in training mode: per-element slopes from a counter-based RNG (Philox),
                     regenerated in backward from the seed instead of being stored.

The Triton interpreter (``TRITON_INTERPRET=1``, CPU tensors) decides per kernel *object*: ``triton.jit``
returns an interpreted function when the variable is set at decoration time. :func:`load` therefore
re-executes a family module when the variable changed since it was imported, and the kernels use only
Triton builtins (no ``tl.sum`` / ``tl.sigmoid`` / ``tl.rand``, which are themselves ``@triton.jit``
functions fixed when ``triton`` was first imported). So setting ``TRITON_INTERPRET=1`` works whenever it
is set before the fused call, whatever was imported first.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["FAMILIES", "interpret_requested", "load"]

FAMILIES = ("elementwise", "prelu", "swish", "rrelu")


def interpret_requested() -> bool:
    """True when ``TRITON_INTERPRET`` asks for the Triton interpreter (as Triton parses it)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def load(family: str) -> ModuleType:
    """Import the kernel module of ``family``, built for the current ``TRITON_INTERPRET`` setting.

    Args:
        family: one of :data:`FAMILIES`.

    Returns:
        The module ``rectlab.kernels.<family>``; its kernels are interpreted when ``TRITON_INTERPRET=1``
        and compiled otherwise.
    """
    want = interpret_requested()
    module = _LOADED.get(family)
    if module is not None and want == module.INTERPRET and module._COMMON_TOKEN is _LOADED["_common"].TOKEN:
        return module  # the common case: already built for this mode
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; known: {', '.join(FAMILIES)}")
    common = _fresh(importlib.import_module("rectlab.kernels._common"), want)
    module = importlib.import_module(f"rectlab.kernels.{family}")
    if want != module.INTERPRET or module._COMMON_TOKEN is not common.TOKEN:
        module = importlib.reload(module)
    _LOADED["_common"] = common
    _LOADED[family] = module
    return module


_LOADED: dict[str, ModuleType] = {}
"""Modules :func:`load` returned, checked against the mode at each call (a cache, not a setting)."""


def _fresh(module: ModuleType, want: bool) -> ModuleType:
    return module if want == module.INTERPRET else importlib.reload(module)
