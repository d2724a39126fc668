"""A newcomer's path without the checkout: build the wheel, install it into a fresh virtual environment, run a
reproduction from an empty folder with the specs shipped inside the package, and load the results in pandas.

The fresh environment sees the current one's packages (torch, pandas, ...) through a ``.pth`` file instead
of reinstalling them, and nothing is downloaded: the wheel is built without build isolation and installed
with ``--no-index --no-deps``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _pip_supports_python_option() -> bool:
    done = subprocess.run([sys.executable, "-m", "pip", "--help"], capture_output=True, text=True)
    return done.returncode == 0 and "--python" in done.stdout


@pytest.mark.slow
def test_wheel_installs_reproduces_and_loads_a_dataframe(tmp_path):
    pytest.importorskip("setuptools")
    pd = pytest.importorskip("pandas")
    import torch

    if not _pip_supports_python_option():
        pytest.skip("pip >= 22.3 is needed to install into another environment (pip --python)")
    # 1. Build the wheel from a copy of the sources (the checkout stays free of build/ and *.egg-info).
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("rectlab-*.whl")

    # 2. A fresh venv that borrows this environment's packages, and the wheel installed into it.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).strip()
    )
    borrowed = dict.fromkeys(str(Path(m.__file__).resolve().parents[1]) for m in (torch, pd))
    (purelib / "_borrowed_site_packages.pth").write_text("\n".join(borrowed) + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        cwd=tmp_path,
    )

    # 3. From an empty folder, without this checkout on the path: reproduce, then a DataFrame.
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    rectlab = venv / ("Scripts/rectlab.exe" if os.name == "nt" else "bin/rectlab")
    out = _run([str(rectlab), "reproduce", "xor-prelu", "--scale", "smoke", "--no-progress"], cwd=empty, env=env)
    assert "xor-prelu (smoke):" in out
    result = empty / "runs" / "repro-xor-prelu-smoke"
    assert (result / "reproduction.html").is_file()
    code = (
        "import json, rectlab\nfrom rectlab.report import to_frame\n"
        "df = to_frame('runs/repro-xor-prelu-smoke')\n"
        "print(json.dumps({'file': rectlab.__file__, 'rows': len(df), 'columns': list(df.columns),"
        " 'best': df.groupby('model')['success_rate'].max().to_dict()}))\n"
    )
    info = json.loads(_run([str(python), "-c", code], cwd=empty, env=env).strip().splitlines()[-1])
    assert Path(info["file"]).resolve().is_relative_to(venv.resolve()), "rectlab came from the wheel"
    saved = [json.loads(p.read_text()) for p in result.glob("xor*.json")]
    assert info["rows"] == sum(len(s["setup"]["lrs"]) * len(s["success"]) for s in saved) > 0
    assert {"model", "lr", "successes", "success_rate"} <= set(info["columns"])
    assert set(info["best"]) == {m for s in saved for m in s["success"]}


def test_the_documented_install_brings_what_the_walkthrough_needs() -> None:
    """docs/reproductions.md installs the wheel with extras, then reproduces on digits (scikit-learn) and reads the
    results with pandas: the extras it names must bring both."""
    import re
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    page = (ROOT / "docs" / "reproductions.md").read_text()
    (extras,) = re.findall(r'pip install "dist/rectlab-[^"]*\.whl\[([^\]]+)\]"', page)
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    brought = {re.split(r"[<>=\[ ;]", req)[0] for extra in extras.split(",") for req in optional[extra.strip()]}
    assert {"scikit-learn", "pandas", "pyarrow"} <= brought, extras
