"""Shared test set-up: where Triton kernels run, and the markers that skip without a GPU or without Triton.

* ``@pytest.mark.gpu``: needs a CUDA GPU; skipped without one.
* ``@pytest.mark.triton``: needs the ``triton`` package; skipped without it (with a GPU or, through
  ``TRITON_INTERPRET=1``, on the CPU).
* ``dev`` fixture: the device kernels run on -- ``"cuda"`` with a GPU, else ``"cpu"`` with
  ``TRITON_INTERPRET=1`` set for that test only; skips without Triton.
* ``cuda`` / ``has_triton`` fixtures: the same facts as booleans, for tests that branch on them.
* ``one_thread`` fixture (module scope): torch on one intra-op thread for the module's tests; tiny models
  train several times faster that way on a shared 2-core machine (``pytestmark = pytest.mark.usefixtures``).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

CUDA = torch.cuda.is_available()
HAS_TRITON = importlib.util.find_spec("triton") is not None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "triton: needs the triton package (skipped without it)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None and not CUDA:
        pytest.skip("needs a CUDA GPU")
    if item.get_closest_marker("triton") is not None and not HAS_TRITON:
        pytest.skip("triton is not installed")


@pytest.fixture
def dev(monkeypatch: pytest.MonkeyPatch) -> str:
    """Where kernels run: the GPU when there is one, else the CPU through Triton's interpreter."""
    if not HAS_TRITON:
        pytest.skip("triton is not installed")
    if CUDA:
        return "cuda"
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    return "cpu"


@pytest.fixture(scope="session")
def cuda() -> bool:
    """True when a CUDA GPU is available."""
    return CUDA


@pytest.fixture(scope="session")
def has_triton() -> bool:
    """True when the triton package is installed (checked without importing it)."""
    return HAS_TRITON


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module's tests (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def registries_restored():
    """Names a test registers (a plugin, a docs example's activation) are gone after it, so no test sees
    another's: the registries of activations, models and datasets are restored as they were."""
    from rectlab.activations import ACTIVATIONS
    from rectlab.data import DATASETS
    from rectlab.models import MODELS

    saved = [(registry, dict(registry._items)) for registry in (ACTIVATIONS, MODELS, DATASETS)]
    yield
    for registry, items in saved:
        registry._items.clear()
        registry._items.update(items)
