"""Third-party models, activations and datasets: entry points and ``--import``.

A plugin is a module that registers names when it is imported::

    # mypkg/rectlab_plugin.py
    from rectlab.activations import ACTIVATIONS, Activation
    from rectlab.models import MODELS

    @ACTIVATIONS.register("my-act")
    class MyAct(Activation): ...

    MODELS.register("my-net", MyNet)      # MyNet(activation=..., num_classes=..., in_channels=...)

Two ways to make rectlab (and every worker process of a study) see it:

* **Entry points**: an installed package declares the module (or a function to call) in the group
  ``rectlab.plugins``; rectlab loads the group the first time a registry is listed or misses a name::

      [project.entry-points."rectlab.plugins"]
      mypkg = "mypkg.rectlab_plugin"            # or "mypkg.rectlab_plugin:register" (called with no arguments)

* **Imports**: ``rectlab --import mypkg.rectlab_plugin compare ...`` (a module name, or the path of a
  ``.py`` file), ``imports = ["mypkg.rectlab_plugin"]`` in a study spec's ``[study]`` table, or
  ``run_study(..., imports=[...])``. Each worker process (``--executor processes`` or ``ray``) imports them
  before training.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from types import ModuleType

from .errors import RectlabError

__all__ = ["GROUP", "PluginError", "import_modules", "load_entry_points", "normalize_imports"]

GROUP = "rectlab.plugins"
_scanned = False  # the entry points are loaded once per process


class PluginError(RectlabError, ImportError):
    """A plugin module could not be imported; the message says which and how to make it importable."""


def load_entry_points() -> list[str]:
    """Load every ``rectlab.plugins`` entry point once per process; returns the names loaded by this call.

    An entry point naming a module is imported; one naming a callable (``module:function``) is called with no
    arguments. A plugin that fails to load is reported with a `RuntimeWarning` naming it and the error,
    and the others still load.
    """
    global _scanned
    if _scanned:
        return []
    _scanned = True  # first, so a plugin that lists a registry does not re-enter
    loaded = []
    for ep in metadata.entry_points(group=GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, ModuleType):
                obj()
        except Exception as e:  # a broken third-party plugin must not take rectlab down with it
            warnings.warn(
                f"rectlab plugin {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        loaded.append(ep.name)
    return loaded


def normalize_imports(names: Iterable[str] | str | None) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``; ``.py`` paths become absolute, so worker processes find them too."""
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for item in names:
        if not isinstance(item, str):
            raise PluginError(f"imports are module names or .py paths, got {item!r}")
        for name in (n.strip() for n in item.split(",")):
            if not name:
                continue
            if name.endswith(".py"):
                name = str(Path(name).expanduser().resolve())
            if name not in out:
                out.append(name)
    return out


def _import_file(path: str) -> ModuleType:
    file = Path(path)
    if not file.is_file():
        raise PluginError(f"--import {path}: no such file")
    name = file.stem
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() == file:
        return existing
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise PluginError(f"--import {path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_modules(names: Iterable[str] | str | None) -> list[ModuleType]:
    """Import plugin modules (names or ``.py`` paths) so their registrations take effect in this process.

    Raises:
        PluginError: a module that is not found, with how to make it importable. Errors raised by the
            module's own code propagate unchanged.
    """
    modules = []
    for name in normalize_imports(names):
        if name.endswith(".py"):
            modules.append(_import_file(name))
            continue
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name is not None and name != e.name and not name.startswith(e.name + "."):
                raise  # the plugin itself imports something missing: show that error as it is
            raise PluginError(
                f"--import {name}: no module named {e.name!r}; install the package, add its folder to PYTHONPATH, "
                f"or pass the path of the .py file"
            ) from None
    return modules
