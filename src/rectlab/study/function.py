"""A study over the user's own training function: its run configuration and its import path.

A function study names ``function = "pkg.module:train"`` (or ``"path/to/file.py:train"``) in its ``[base]``
table instead of a built-in model; every other ``[base]`` and ``[grid]`` key is a parameter the function
reads from ``trial.params``. Functions are referenced by import path, never pickled, so that worker
processes, Ray workers and a later invocation that resumes the study all import the same function; the
path is part of every run's hash and of the study's digest.

This module is light (no torch): `rectlab.study.spec` builds `FunctionConfig` from a spec, and
`rectlab.study.trial` runs one.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RectlabError
from ..plugins import PluginError, import_modules

__all__ = [
    "EXECUTION_KEYS",
    "RESERVED_KEYS",
    "FunctionConfig",
    "FunctionError",
    "function_reference",
    "resolve_function",
]

# [base] keys of a function study that say where a trial runs, not what it computes (not in the hash).
EXECUTION_KEYS = ("device", "data_dir")
# Keys that are not parameters of the function (trial.params never holds them).
RESERVED_KEYS = ("function", "seed", *EXECUTION_KEYS)
_HOW = (
    "define it with def at the top level of an importable module (a .py file on PYTHONPATH or in an installed "
    "package) and pass it, or its path as 'module:function' or 'path/to/file.py:function'"
)


class FunctionError(RectlabError, ValueError):
    """A training function that cannot be referenced or imported; the message says how to fix it."""


def _json_value(key: str, value: Any) -> Any:
    """A parameter value must survive JSON (results.db) unchanged: numbers, strings, booleans, lists, tables."""
    try:
        back = json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise FunctionError(
            f"parameter {key}={value!r} is not a plain value; use numbers, strings, booleans, "
            "lists or tables (dicts) of them"
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise FunctionError(f"parameter {key}={value!r} must be a finite number")
    if back != value and not isinstance(value, tuple):
        raise FunctionError(f"parameter {key}={value!r} does not survive JSON unchanged; use plain values")
    return back


@dataclass(frozen=True)
class FunctionConfig:
    """One trial of a user's training function: what it computes (function, params, seed) and where it runs.

    Attributes:
        function: the import path, ``"pkg.module:train"`` or ``"/abs/path/file.py:train"``.
        params: the grid cell's values plus the study's shared ``[base]`` parameters (``trial.params``).
        seed: the trial's seed (applied to Python, NumPy and torch before the function starts).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (``trial.device``); not part of the hash.
        data_dir: an optional data folder for the function (``trial.data_dir``); not part of the hash.
    """

    function: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    data_dir: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "function", function_reference(self.function))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise FunctionError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")
        ):
            raise FunctionError(f"device={self.device!r} is not valid; use auto, cpu, cuda or cuda:N")
        for key in self.params:
            if key in RESERVED_KEYS:
                raise FunctionError(f"{key!r} is not a parameter of the function (it is set by the study); rename it")
        object.__setattr__(self, "params", {k: _json_value(k, v) for k, v in self.params.items()})

    @property
    def epochs(self) -> int:
        """``params["epochs"]`` when it is an integer, else 0 (for progress displays only)."""
        value = self.params.get("epochs")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def to_dict(self) -> dict[str, Any]:
        """The flat ``[base]`` form: ``function``, the parameters, ``seed``, ``device``, ``data_dir``."""
        return {
            "function": self.function,
            **self.params,
            "seed": self.seed,
            "device": self.device,
            "data_dir": self.data_dir,
        }

    def replace(self, **changes: Any) -> FunctionConfig:
        """A copy with ``changes``: reserved keys set those fields, any other key a parameter."""
        fields = {k: changes.pop(k) for k in RESERVED_KEYS if k in changes}
        return FunctionConfig(
            **{
                "function": self.function,
                "seed": self.seed,
                "device": self.device,
                "data_dir": self.data_dir,
                **fields,
                "params": {**self.params, **changes},
            }
        )

    def identity(self, skip: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
        """What the trials compute, for a study's digest: the function and the parameters not in ``skip``."""
        return {"function": self.function, **{k: v for k, v in self.params.items() if k not in skip}}

    @property
    def hash(self) -> str:
        """16 hex digits of the function's import path, the parameters and the seed (not device or data_dir)."""
        blob = json.dumps({"function": self.function, "params": self.params, "seed": self.seed}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_reference(text: str) -> str:
    module, sep, attr = text.strip().rpartition(":")
    if not sep or not module or not attr or not all(p.isidentifier() for p in attr.split(".")):
        raise FunctionError(
            f"function {text!r} is not an import path; write it as 'pkg.module:train' or 'path/to/file.py:train'"
        )
    if module.endswith(".py"):
        return f"{Path(module).expanduser().resolve()}:{attr}"
    if not all(p.isidentifier() for p in module.split(".")):
        raise FunctionError(
            f"function {text!r}: {module!r} is not a module name; write 'pkg.module:train' or 'path/to/file.py:train'"
        )
    return f"{module}:{attr}"


def function_reference(function: Callable[..., Any] | str) -> str:
    """The import path of a training function: ``"pkg.module:name"`` (or ``"/abs/file.py:name"``).

    Args:
        function: a function defined at the top level of an importable module, or its import path as text
            (``"pkg.module:train"``; a ``.py`` path is made absolute).

    Raises:
        FunctionError: a lambda, a nested function, a function defined in ``__main__`` (the script being
            run, which worker processes cannot import), or text that is not an import path; the message
            says how to fix it.
    """
    if isinstance(function, str):
        return _check_reference(function)
    if not callable(function):
        raise FunctionError(f"the training function must be a function or 'module:function', got {function!r}")
    name, module = getattr(function, "__qualname__", None), getattr(function, "__module__", None)
    if not isinstance(name, str) or not isinstance(module, str):
        raise FunctionError(f"{function!r} has no import path (a partial or a callable object?); {_HOW}")
    if name.split(".")[-1] == "<lambda>":
        raise FunctionError(
            f"a lambda cannot be imported by worker processes or by a later run that resumes the study; {_HOW}"
        )
    if "<locals>" in name:
        raise FunctionError(f"{name} is defined inside another function, so it cannot be imported; {_HOW}")
    if module == "__main__":
        raise FunctionError(
            f"{name} is defined in __main__ (the script being run), which worker processes and later runs cannot "
            f"import; move it into a module (mytrain.py) and pass mytrain.{name}, or in the script import it "
            f"under the script's module name (from my_script import {name}) and pass that"
        )
    return f"{module}:{name}"


def _search_cwd(module_name: str) -> None:
    """Put the current folder on the import path when the module is there and nowhere else (as ``python -m``
    would; the ``rectlab`` command does not); worker processes started later inherit the path."""
    top = module_name.split(".")[0]
    if module_name.endswith(".py") or importlib.util.find_spec(top) is not None:
        return
    cwd = Path.cwd()
    if (cwd / f"{top}.py").is_file() or (cwd / top / "__init__.py").is_file():
        sys.path.insert(0, str(cwd))


def resolve_function(reference: str) -> Callable[..., Any]:
    """Import the function an import path names (a module in the current folder is found too).

    Raises:
        FunctionError: the module cannot be found or has no such callable (the message says what to check).
    """
    reference = _check_reference(reference)
    module_name, _, attr = reference.rpartition(":")
    _search_cwd(module_name)
    try:
        if module_name.endswith(".py"):
            (module,) = import_modules([module_name])
        else:
            module = importlib.import_module(module_name)
    except PluginError as e:
        raise FunctionError(f"function {reference}: {e}") from None
    except ModuleNotFoundError as e:
        if e.name is not None and module_name != e.name and not module_name.startswith(e.name + "."):
            raise  # the module itself imports something missing: show that error as it is
        raise FunctionError(
            f"function {reference}: no module named {e.name!r}; run from the folder that holds it, "
            "add that folder to PYTHONPATH, or give the path of the .py file"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise FunctionError(f"function {reference}: {module_name} has no {attr!r}; check the name after ':'")
        obj = getattr(obj, part)
    if not callable(obj):
        raise FunctionError(f"function {reference}: {attr} is a {type(obj).__name__}, not a function")
    return obj
