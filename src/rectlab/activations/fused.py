"""Fused activations: ``torch.autograd.Function``s that run Triton kernels, dispatched per call.

Placeholder until the kernels land (issue 4): dispatch only reports availability.
"""

from __future__ import annotations

import functools
import importlib.util
import os

from torch import Tensor

BACKENDS = ("auto", "torch", "triton")


def check_backend(backend: str) -> str:
    """Validate a ``backend=`` argument."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return backend


@functools.cache
def triton_available() -> bool:
    """True when the ``triton`` package can be imported."""
    return importlib.util.find_spec("triton") is not None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def use_fused(x: Tensor, backend: str, op: str) -> bool:
    """Decide, for one call, whether the fused kernel runs."""
    if backend == "torch" or op == "identity":
        return False
    if backend == "auto":
        return False
    raise RuntimeError(f"backend='triton' requested for {op!r}, but rectlab's fused kernels are not built yet")
