"""The documentation: the MkDocs site builds with --strict, and every Python example in it runs.

Examples are the ```python blocks of README.md and docs/*.md. The blocks of one page run in order in one
namespace (later blocks use names from earlier ones), in a temporary working directory. A block preceded
by ``<!-- no-run -->`` is shown but not run (it needs a GPU or takes minutes); keep those few. A block
preceded by ``<!-- file: NAME.py -->`` is a file the page tells the reader to save: it is written to NAME.py
in the working directory (which is on the import path), not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- no-run -->\n|<!-- file: ([\w.]+) -->\n)?```python\n(.*?)```", re.S)


def page_blocks(page: Path) -> list[tuple[str | None, str]]:
    """``(file name or None, code)`` of the ```python blocks of a page that are run or saved, in order."""
    return [(name or None, code) for marker, name, code in BLOCK.findall(page.read_text())
            if not marker.startswith("<!-- no-run")]


def python_blocks(page: Path) -> list[str]:
    """The runnable ```python blocks of a page, in order."""
    return [code for name, code in page_blocks(page) if name is None]


@pytest.fixture(scope="module")
def fashion_mnist_somewhere(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """A folder for $RECTLAB_DATA when Fashion-MNIST is not installed (CI): random images in the real
    IDX format and the real sizes, so the examples that load it run everywhere."""
    import rectlab.data as rdata
    from rectlab.data.idx import IDX_FILES, write_idx

    if rdata.find("fashion-mnist") is not None:
        return None
    folder = tmp_path_factory.mktemp("fashion-mnist")
    rng = np.random.default_rng(0)
    for name, shape in zip(IDX_FILES, [(60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]):
        high = 256 if len(shape) > 1 else 10
        write_idx(folder / name, rng.integers(0, high, shape, dtype=np.uint8))
    return str(folder)


def test_every_page_is_in_the_site_and_has_a_title() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f": {page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"
        assert page.read_text().startswith("# "), f"{page.name} must start with a '# Title'"


def test_readme_front_page_is_short_and_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands[0].startswith("bash scripts/setup.sh --data && .venv/bin/rectlab compare")
    assert commands[1] == "bash scripts/setup.sh --dev && .venv/bin/python -m pytest -q"
    assert (ROOT / ".ci" / "run").read_text().strip().endswith(commands[1].replace("bash scripts/setup.sh --dev && ",
                                                                                   ""))


def test_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs, "mkdocs is part of the dev set-up: bash scripts/setup.sh --dev"
    done = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").is_file()


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      fashion_mnist_somewhere: str | None) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if fashion_mnist_somewhere:
        monkeypatch.setenv("RECTLAB_DATA", fashion_mnist_somewhere)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"__name__": "__docs__"}
    for i, (name, code) in enumerate(page_blocks(page)):
        if name is not None:
            (tmp_path / name).write_text(code)
            continue
        exec(compile(code, f"{page.name} (python block {i + 1})", "exec"), namespace)
