"""Which implementation a program asks for: ``RECTLAB_BACKEND`` replaces ``backend="auto"`` for a whole program.

Read at each call by the fused dispatch (`rectlab.activations.selfcheck.use_fused`) and the CPU paths
(`rectlab.activations.cpu`), so setting ``RECTLAB_BACKEND=torch`` runs every activation's plain-torch
reference, and ``RECTLAB_BACKEND=triton`` forces the kernels.
"""

from __future__ import annotations

import os

from ..errors import InputError

__all__ = ["BACKEND_ENV", "backend_from_env"]

BACKEND_ENV = "RECTLAB_BACKEND"
"""Environment variable that replaces ``backend="auto"`` for a whole program (read at each call)."""


def backend_from_env(backend: str) -> str:
    """The backend a call runs with: ``backend`` itself, unless it is ``"auto"`` and ``RECTLAB_BACKEND`` is set.

    Raises:
        ValueError: ``RECTLAB_BACKEND`` holds something other than ``torch``, ``triton`` or ``auto``.
    """
    if backend != "auto":
        return backend
    value = os.environ.get(BACKEND_ENV, "").strip().lower()
    if not value:
        return "auto"
    if value not in ("auto", "torch", "triton"):
        raise InputError(
            f"{BACKEND_ENV}={os.environ[BACKEND_ENV]!r} is not valid: use torch, triton or auto (or unset it)"
        )
    return value
