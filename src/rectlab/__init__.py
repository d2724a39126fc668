"""rectlab: use, study and compare rectifier-family activation functions in PyTorch."""

from __future__ import annotations

from typing import Any

from torch import nn

from . import activations
from .registry import Registry, UnknownNameError

__version__ = "0.1.0"


def get_activation(name: str, channels: int | None = None, **kwargs: Any) -> nn.Module:
    """Create the activation registered as ``name`` (see :func:`rectlab.activations.create`)."""
    module = activations.create(name, channels=channels, **kwargs)
    if module is None:
        raise ValueError("get_activation needs a name; see rectlab.activations.names()")
    return module


# Every public submodule but `activations` (imported above). They load on first use
# (`rectlab.models.create(...)` after a plain `import rectlab`), so importing rectlab stays cheap.
_SUBMODULES = (
    "bench",
    "config",
    "data",
    "export",
    "init",
    "kernels",
    "models",
    "optim",
    "plot",
    "plugins",
    "probes",
    "pruning",
    "registry",
    "report",
    "reproduce",
    "search",
    "study",
    "surgery",
    "tracking",
    "train",
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'rectlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["Registry", "UnknownNameError", "__version__", "activations", "get_activation", *_SUBMODULES]
