"""The public surface of ``rectlab`` itself: lazy submodules, ``dir()``, typing marker, a light import."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rectlab

# What `import rectlab` may load of rectlab: the activations (with their lazy fused dispatch, which asks
# rectlab.kernels whether the interpreter is requested, but no kernel family), the registry and its plugin loader.
LIGHT = (
    "rectlab",
    "rectlab.errors",
    "rectlab.registry",
    "rectlab.plugins",
    "rectlab.kernels",
    "rectlab.kernels._layout",
)
LIGHT_PACKAGES = ("rectlab.activations",)
SUBMODULES = (
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


@pytest.fixture(scope="module")
def fresh() -> dict:
    """What a fresh interpreter sees: the modules `import rectlab` adds to torch's, then lazy attribute access."""
    code = (
        "import json, sys; import torch; before = set(sys.modules); import rectlab; "
        "new = sorted(set(sys.modules) - before); config_loaded = 'rectlab.training.config' in sys.modules; "
        "cfg = rectlab.training.config.TrainConfig(); "
        "print(json.dumps({'other': [m for m in new if m.split('.')[0] != 'rectlab'], "
        "'rectlab': [m for m in new if m.split('.')[0] == 'rectlab'], 'config_before': config_loaded, "
        "'config_after': 'rectlab.training.config' in sys.modules, 'families': list(rectlab.kernels.FAMILIES), "
        "'model': cfg.model}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_rectlab_stays_light(fresh: dict) -> None:
    assert fresh["other"] == []  # nothing beyond what torch itself imports: no triton, no matplotlib, ...
    heavy = [m for m in fresh["rectlab"] if m not in LIGHT and not m.startswith(LIGHT_PACKAGES)]
    assert heavy == []


def test_submodules_load_on_attribute_access(fresh: dict) -> None:
    assert fresh["config_before"] is False and fresh["config_after"] is True
    assert fresh["families"] and isinstance(fresh["model"], str)


@pytest.mark.parametrize("name", SUBMODULES)
def test_every_public_submodule_is_an_attribute(name: str) -> None:
    assert getattr(rectlab, name) is importlib.import_module(f"rectlab.{name}")
    assert name in dir(rectlab) and name in rectlab.__all__


def test_dir_lists_the_public_names_and_unknown_names_fail() -> None:
    assert dir(rectlab) == sorted(rectlab.__all__)
    assert {"Registry", "UnknownNameError", "activations", "get_activation", "__version__"} <= set(dir(rectlab))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rectlab.nope  # noqa: B018


def test_package_is_typed() -> None:
    assert importlib.resources.files("rectlab").joinpath("py.typed").is_file()


def test_get_activation() -> None:
    act = rectlab.get_activation("prelu", channels=3)
    assert isinstance(act, rectlab.activations.PReLU) and act.weight.shape == (3,)
    with pytest.raises(ValueError, match="needs a name"):
        rectlab.get_activation("")


def test_the_version_is_written_once() -> None:
    """pyproject.toml holds the version; the package reads it from the installed distribution's metadata."""
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    (declared,) = re.findall(r'^version = "([^"]+)"', pyproject, flags=re.M)
    assert rectlab.__version__ == importlib.metadata.version("rectlab") == declared
    assert declared not in importlib.resources.files("rectlab").joinpath("__init__.py").read_text()
