"""What a study's numbers depend on besides its spec, recorded per study and checked on every resume.

The same spec and seeds give bit-identical results on one kind of device with one torch version, one
number of intra-op threads (``--threads``) and the same determinism settings: a different thread count
splits reductions differently, another torch or CPU instruction set (AVX2, AVX-512) or GPU picks other
kernels, and cuDNN's benchmark mode or TF32 change the arithmetic. A study records these with its spec
([save_numerics][rectlab.study.Store.save_numerics]); resuming or extending it with different ones would mix two
kinds of numbers in one comparison, so `check_numerics` refuses it, naming both values and the
flags that fix or override it.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..errors import RectlabError
from ..training.loop import resolve_device

__all__ = ["ALLOW_FLAG", "NumericsChanged", "check_numerics", "current_numerics", "device_kind"]

ALLOW_FLAG = "--allow-numerics-change"


class NumericsChanged(RectlabError, ValueError):
    """The study directory was trained with other numerics (threads, torch, device kind, determinism)."""


def device_kind(device: torch.device) -> str:
    """What kind of device computes: ``"cpu x86_64 AVX512"`` or the GPU's name (not its index)."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{torch.cuda.get_device_name(device)} (sm_{major}{minor})"
    if device.type == "cpu":
        capability = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "?"
        return f"cpu {platform.machine() or platform.processor()} {capability}"
    return device.type


def current_numerics(threads: int, devices: Iterable[str]) -> dict[str, Any]:
    """The numerics runs on ``devices`` (config device strings: "cpu", "cuda", "auto") would use here.

    Args:
        threads: intra-op CPU threads per run (``--threads``).
        devices: the runs' devices.

    Returns:
        A flat dict: ``threads``, ``torch``, ``device`` (the kinds, comma-separated) and the determinism
        switches (``deterministic_algorithms``, ``cudnn.deterministic``, ``cudnn.benchmark``,
        ``cudnn.allow_tf32``, ``matmul.allow_tf32``, ``float32_matmul_precision``).
    """
    kinds = sorted({device_kind(resolve_device(d)) for d in devices})
    return {
        "threads": threads,
        "torch": torch.__version__,
        "device": ", ".join(kinds),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn.deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn.benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn.allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "matmul.allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def check_numerics(
    recorded: dict[str, Any] | None, current: dict[str, Any], out_dir: str | Path, allow: bool = False
) -> None:
    """Refuse to add runs with ``current`` numerics to a study trained with ``recorded`` ones.

    Args:
        recorded: what the study directory recorded (None: nothing, e.g. a new study or an older rectlab).
        current: what this invocation would use (`current_numerics`).
        out_dir: the study directory (for the message).
        allow: accept the difference (``--allow-numerics-change``).

    Raises:
        NumericsChanged: they differ and ``allow`` is False; the message names both values of every
            difference, the flag that restores the recorded value (``--threads``, ``--device``) where there
            is one, and ``--allow-numerics-change``.
    """
    if recorded is None or allow:
        return
    changed = [key for key in sorted(set(recorded) | set(current)) if recorded.get(key) != current.get(key)]
    if not changed:
        return
    what = "; ".join(f"{key} {recorded.get(key)!r} -> {current.get(key)!r}" for key in changed)
    fixes = []
    if "threads" in changed and recorded.get("threads") is not None:
        fixes.append(f"--threads {recorded['threads']}")
    if "device" in changed and recorded.get("device"):
        fixes.append(f"the device it used ({recorded['device']}; --device)")
    restore = f"run it with {' and '.join(fixes)}, or " if fixes else ""
    raise NumericsChanged(
        f"{out_dir} was trained with other numerics than this invocation would use ({what}); its results would "
        f"change with them. To go on, {restore}pass {ALLOW_FLAG} to add runs with these (the study then mixes both)"
    )
