"""The repository describes the software and its measurements, not how it was developed.

Every text file of the checkout (code, docs, tests, results, configuration) is searched for mentions of
issue numbers, work sessions, the people or tools that wrote it, documents the repository does not contain
and paths outside it. History belongs in CHANGELOG.md, in the same terms: what changed in the software.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis",
             ".import_linter_cache", "node_modules", "site", "build", "dist", "runs", ".data"}  # fmt: skip
SKIP_TOP = {"data", ".git"}  # the git-ignored dataset folder (src/rectlab/data is code); .git (a file in a worktree)
THIS = Path(__file__).resolve()

FORBIDDEN = [
    (re.compile(r"\bissues? ?#?\d+", re.I), "an issue number"),
    (re.compile(r"\bthe issue\b(?! tracker)", re.I), "an issue"),
    (re.compile(r"\b(BEGIN|END) issue\b", re.I), "a merge marker"),
    (re.compile(r"\bdefects? ?#?\d+", re.I), "a defect number"),
    (re.compile(r"\bhelper [A-Z]\b|\(helper\b"), "who wrote it"),
    (re.compile(r"\bthe lead\b", re.I), "who merges it"),
    (re.compile(r"\b(this|next|previous|later|a|the|gpu) session\b", re.I), "a work session"),
    (re.compile(r"\bso far\b", re.I), "the state of the work"),
    (re.compile(r"\bas before\b", re.I), "an earlier version"),
    (re.compile(r"DESIGN\.md"), "a design document the repository does not contain"),
    (re.compile(r"\.\./shared\b|/work/"), "a path outside the repository"),
]


def _candidates() -> list[Path]:
    """The repository's files: git's tracked and not-ignored ones, or a walk that skips the usual output folders
    where git is not available (a source archive)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                                capture_output=True, check=True, timeout=60).stdout  # fmt: skip
        return sorted(ROOT / name for name in listed.decode().split("\0") if name)
    except (OSError, subprocess.SubprocessError):
        pass
    out = []
    for folder, dirs, files in os.walk(ROOT):
        top = Path(folder) == ROOT
        dirs[:] = sorted(
            d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info") and not (top and d in SKIP_TOP)
        )
        out += [Path(folder) / name for name in sorted(files) if not (top and name in SKIP_TOP)]
    return out


def text_files() -> list[Path]:
    out = []
    for path in _candidates():
        if path == THIS or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images, archives
        out.append(path)
    return out


def test_no_development_process_text() -> None:
    files = text_files()
    assert ROOT / "README.md" in files and ROOT / "src" / "rectlab" / "specs" / "RESULTS.md" in files
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern, what in FORBIDDEN:
            for match in pattern.finditer(text):
                lineno = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{lineno}: {what}: {match.group(0)!r}")
    assert found == []


def test_the_patterns_catch_what_they_are_for() -> None:
    samples = ["as in issue 14", "(issue #3)", "BEGIN issue 14 (helper F)", "defect 6", "pending a GPU session",
               "the lead re-runs it", "measured so far", "no lock, as before", "see DESIGN.md",
               "cp ../shared/x .", "/work/elsewhere/notes.md"]  # fmt: skip
    for sample in samples:
        assert any(p.search(sample) for p, _ in FORBIDDEN), sample
    for fine in ["rectlab's issue tracker", "docs/design.md", 'scope="session"', "ort.InferenceSession",
                 "the @triton.jit helpers"]:  # fmt: skip
        assert not any(p.search(fine) for p, _ in FORBIDDEN), fine
