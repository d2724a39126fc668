"""rectlab: use, study and compare rectifier-family activation functions in PyTorch."""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

from .errors import InputError, RectlabError
from .registry import Registry, UnknownNameError

if TYPE_CHECKING:
    from torch import nn

try:
    __version__ = metadata.version("rectlab")  # the one place it is written: pyproject.toml
except metadata.PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"


def get_activation(name: str, channels: int | None = None, **kwargs: Any) -> nn.Module:
    """Create the activation registered as ``name`` (see [`rectlab.activations.create`][rectlab.activations.create]);
    parameters may be given in the name (``"smelu:beta=0.5"``) or as keyword arguments."""
    from . import activations  # torch: `import rectlab` (and `rectlab --version`) stay free of it

    module = activations.create(name, channels=channels, **kwargs)
    if module is None:
        raise InputError("get_activation needs a name; see rectlab.activations.names()")
    return module


# Every public submodule. They load on first use (`rectlab.models.create(...)` after a plain `import rectlab`),
# so importing rectlab stays cheap: it does not import torch.
_SUBMODULES = (
    "activations",
    "data",
    "errors",
    "export",
    "files",
    "init",
    "integrations",
    "kernels",
    "models",
    "optim",
    "plugins",
    "probes",
    "registry",
    "report",
    "reproduce",
    "search",
    "study",
    "surgery",
    "training",
)
# Names of the top-level surface that live in a submodule, loaded on first use like the submodules.
_ATTRIBUTES = {"TrainConfig": "training", "train_one": "training", "Study": "integrations", "analyze": "report"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES or name in _ATTRIBUTES:
        if name in _SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        return getattr(importlib.import_module(f"{__name__}.{_ATTRIBUTES[name]}"), name)
    raise AttributeError(f"module 'rectlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "RectlabError",
    "Registry",
    "UnknownNameError",
    "__version__",
    "get_activation",
    *_SUBMODULES,
    *_ATTRIBUTES,
]
