"""The documentation: the MkDocs site builds with --strict (offline-ready, no raw Sphinx role on the API page),
and every Python example in it runs on its own.

Examples are the ```python blocks of README.md and docs/*.md. Each block runs alone, in a fresh namespace and
temporary working directory, as a reader who copies one block runs it: every block has its own imports and
data. A block preceded by ``<!-- no-run -->`` is shown but not run (it needs a GPU or takes minutes); keep those
few. A block preceded by ``<!-- file: NAME.py -->`` is a file the page tells the reader to save: it is written
to NAME.py in the working directory (which is on the import path) before the page's blocks run, not run itself.
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
    return [
        (name or None, code)
        for marker, name, code in BLOCK.findall(page.read_text())
        if not marker.startswith("<!-- no-run")
    ]


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
    assert commands[1] == "bash scripts/setup.sh --dev && bash scripts/check.sh"
    assert (
        (ROOT / ".ci" / "run").read_text().strip().endswith(commands[1].replace("bash scripts/setup.sh --dev && ", ""))
    )


# A Sphinx role left in a docstring shows on the API page as text: ":func:<code>get</code>".
RAW_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|data|meth|attr|exc|obj|const|ref):(?:<code>|`)")


def test_site_builds_strictly_offline_ready_and_without_raw_roles(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs, "mkdocs is part of the dev set-up: bash scripts/setup.sh --dev"
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    raw = sorted(set(RAW_ROLE.findall(api)) | set(re.findall(r":\w+:<code>[^<]*</code>", api)))
    assert not raw, (
        f"the API page shows {len(raw)} raw Sphinx roles such as {raw[:5]}: write docstring "
        f"cross-references as [name][rectlab.module.name] or `name`"
    )
    for page in (tmp_path / "site").rglob("*.html"):
        html = page.read_text()
        assert "fonts.googleapis" not in html and "fonts.gstatic" not in html, f"{page.name} loads web fonts"
    home = (tmp_path / "site" / "index.html").read_text()
    assert "stylesheets/extra.css" in home
    assert "white-space: pre-wrap" in (tmp_path / "site" / "stylesheets" / "extra.css").read_text()  # no cut code


def _blocks() -> list[tuple[Path, int, str]]:
    return [(page, i, code) for page in PAGES for i, code in enumerate(python_blocks(page), 1)]


@pytest.mark.parametrize(("page", "index", "code"), _blocks(), ids=[f"{p.name}-{i}" for p, i, _ in _blocks()])
def test_each_example_runs_on_its_own(
    page: Path,
    index: int,
    code: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fashion_mnist_somewhere: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if fashion_mnist_somewhere:
        monkeypatch.setenv("RECTLAB_DATA", fashion_mnist_somewhere)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, text in page_blocks(page):  # the files the page tells the reader to save
        if name is not None:
            (tmp_path / name).write_text(text)
    exec(compile(code, f"{page.name} (python block {index})", "exec"), {"__name__": "__docs__"})
