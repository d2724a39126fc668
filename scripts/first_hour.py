"""A new user's first hour, scripted: every command of README.md and docs/*.md, from a fresh copy of the checkout.

    python scripts/first_hour.py                  # every command, then every ```python block on its own
    python scripts/first_hour.py --quick --no-blocks  # what the test suite runs (tests/test_first_hour.py)

What it does:

1. Copies the files a fresh clone holds (``git ls-files``: tracked and not ignored; no .venv, runs/ or build
   output) into a temporary folder, and works in an empty folder beside it with that copy's ``src`` on the path.
2. Collects every command: the lines of the ```bash blocks and the inline ``rectlab ...`` commands of the prose
   that are complete (no ``...``, ``|``, ``[options]`` or upper-case placeholders such as ``DIR``, and the
   command line parses) and not part of a command already collected. Each must match one rule of ``RULES``: run
   it, run it at a reduced size through its own flags (digits instead of the full dataset, 1 epoch, 1 seed, the
   ``smoke`` scale; the main job's full size is timed on its own, see README.md), check a synopsis against
   ``--help``, or skip it with the reason (a GPU, a cluster, data this machine lacks, a server, the set-up that CI
   itself runs). A command no rule matches fails the walkthrough: classify new documentation commands here.
   ``--quick`` also skips the commands whose work another test already does (every reproduction at smoke scale:
   tests/test_reproduce.py), to keep the test suite's share short.
3. Runs the commands in reading order (README, then docs/ alphabetically), the ones that use a placeholder
   (``runs/x/runs/<hash>/checkpoint.pt``) after the others. ``rectlab`` commands run in this process (one torch
   import for all; the README's main command in a fresh process, as the user types it); others as processes.
4. Runs every ```python block of the pages on its own, each in a fresh process (unless ``--no-blocks``).

Exit status 0 when everything passed; every command is printed with what ran and how long it took.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"```(bash|sh|console|shell)\n(.*?)```", re.S)
PYTHON = re.compile(r"(<!-- no-run -->\n)?```python\n(.*?)```", re.S)
INLINE = re.compile(r"`((?:\.venv/bin/)?rectlab [^`]+)`")
PLACEHOLDER = re.compile(r"\.\.\.|\||\[|\b[A-Z][A-Z_.]{2,}\b|\bF\.onnx\b")

# Reduced sizes, through the commands' own flags.
SMALL_DATA = ["--dataset", "digits", "--train-limit", "128", "--test-limit", "64", "--batch-size", "64"]


@dataclass
class Rule:
    """What to do with a documented command: ``pattern`` is searched in the command text."""

    pattern: str
    action: str  # "run", "reduce", "help" (a synopsis: its flags must exist) or "skip"
    why: str = ""
    covered: str = ""  # with --quick: skipped, as the test named here does the same work
    needs: str = ""  # a dataset: without it on this machine the command is skipped, saying so


RULES = [
    Rule(
        r"^bash scripts/setup\.sh --dev && (\.venv/bin/python -m pytest|bash scripts/check\.sh)",
        "skip",
        "the set-up and every check: CI runs exactly this (.ci/run), and this walkthrough is part of it",
    ),
    Rule(r"^python benchmarks/\w+\.py", "script-help", "a benchmark script's synopsis: every flag it shows must exist"),
    Rule(r"^rectlab run my_loop\.toml", "own-loop", "the page's mytrain.py and my_loop.toml, 1 epoch, 2 seeds"),
    Rule(r"^rectlab analyze results\.csv", "own-loop", "the results of the study above, exported to results.csv"),
    Rule(
        r"^bash scripts/setup\.sh --data && \.venv/bin/rectlab compare",
        "reduce",
        "the set-up is CI's own; the main job runs on digits, 1 epoch, 2 seeds, as a fresh process",
    ),
    Rule(r"^sudo apt-get install", "skip", "a system package (Fashion-MNIST is found or stood in for here)"),
    Rule(
        r"^python -m pip wheel|^pip install \"dist/",
        "skip",
        "tests/test_wheel.py builds the wheel and installs it into a fresh virtual environment",
    ),
    Rule(r"^mkdir try-rectlab && cd try-rectlab$", "run"),
    Rule(r"^tensorboard --logdir", "skip", "a web server"),
    Rule(r"^torchrun ", "skip", "several processes/GPUs; tests/test_scale_out.py runs DDP under torchrun on CPU"),
    Rule(r"--device cuda|--executor ray --address", "skip", "a CUDA GPU and a Ray cluster"),
    Rule(
        r"^rectlab bench gpu$|^rectlab bench kernels$|^rectlab bench study --workers 5 --cuda-graphs",
        "skip",
        "benchmarks (minutes, GPU targets); tests/test_bench.py runs each one's smoke form",
    ),
    Rule(r"^rectlab bench \w+ +\[", "help", "a synopsis: every flag it shows must exist"),
    Rule(r"--dataset cifar10", "reduce", "1 epoch, 1 seed, the first 128 images", needs="cifar10"),
    Rule(r"^rectlab (compare|train) ", "reduce", "digits, 1 epoch, 1 seed"),
    Rule(r"^rectlab reproduce relu-classifier --scale smoke$", "reduce", "in this process"),
    Rule(
        r"^rectlab reproduce xor-prelu --scale smoke$",
        "reduce",
        "in this process",
        covered="tests/test_reproduce.py runs this command (test_cli_runs_a_reproduction)",
    ),
    Rule(
        r"^rectlab reproduce \S+ --scale|^rectlab reproduce all\b",
        "reduce",
        "the smoke scale",
        covered="tests/test_reproduce.py runs every reproduction at smoke scale",
    ),
    Rule(r"^rectlab search ", "reduce", "the smoke preset"),
    Rule(r"^rectlab run study\.toml", "reduce", "the study file of docs/studies.md, validated with --dry-run"),
    Rule(r"^rectlab (plot|export|export-model|env|list|reproduce --list|report)\b", "run"),
]


def _set(tokens: list[str], flag: str, value: str) -> None:
    if flag in tokens:
        tokens[tokens.index(flag) + 1] = value
    else:
        tokens += [flag, value]


def reduce(tokens: list[str], main_job: bool = False) -> list[str]:
    """The command at a reduced size, through its own flags."""
    out = list(tokens)
    command = next(t for t in out[1:] if not t.startswith("-") and t != "--import")
    if command in ("compare", "train"):
        keep_data = "--dataset" in out and out[out.index("--dataset") + 1] != "fashion-mnist"
        for i, flag in enumerate(SMALL_DATA[::2]):
            if not (keep_data and flag == "--dataset"):
                _set(out, flag, SMALL_DATA[2 * i + 1])
        _set(out, "--epochs", "1")
        if command == "compare":
            _set(out, "--seeds", "2" if main_job else "1")
            if not main_job:
                _set(out, "--executor", "local")
    elif command == "reproduce":
        _set(out, "--scale", "smoke")
        if "--dataset" in out:
            _set(out, "--dataset", "digits")
        out += ["--executor", "local", "--no-progress"]
    elif command == "search":
        _set(out, "--preset", "smoke")
        out += ["--executor", "local", "--no-progress"] if "--executor" not in out else ["--no-progress"]
        if "--executor" in tokens:
            _set(out, "--executor", "local")
    elif command == "run":
        out.append("--dry-run")
    return out


def _parses(command: str) -> bool:
    from rectlab.cli.main import build_parser

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit:
        return False
    return True


def commands(pages: list[Path]) -> list[tuple[str, str]]:
    """``(page, command)`` in reading order: bash blocks (continuations joined, prompts and comments removed)
    and complete inline ``rectlab ...`` commands of the prose; a command already collected (or one whose words
    all appear in one collected) is kept once."""
    found: list[tuple[str, str]] = []
    for page in pages:
        text = page.read_text()
        for _, body in FENCE.findall(text):
            for line in body.replace("\\\n", " ").splitlines():
                line = line.strip().removeprefix("$ ")
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line and not line.startswith("#"):
                    found.append((page.name, re.sub(r"\s+", " ", line)))
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for span in INLINE.findall(prose):
            span = span.replace("\\|", "|")
            if len(span.split()) > 2 and not PLACEHOLDER.search(span.split(" ", 1)[1]) and _parses(span):
                found.append((page.name, span))
    kept: list[tuple[str, str]] = []
    for name, command in found:
        words = set(shlex.split(command))
        if not any(words <= set(shlex.split(other)) for _, other in kept):
            kept.append((name, command))
    return kept


def rule_for(command: str) -> Rule | None:
    return next((r for r in RULES if re.search(r.pattern, command)), None)


class Walk:
    def __init__(self, source: Path, work: Path, data_env: dict[str, str], quick: bool = False) -> None:
        self.source, self.work, self.env, self.quick = source, work, data_env, quick
        self.cwd = work
        self.failures: list[str] = []
        self.main_job_ran = False

    def _rectlab_in_process(self, argv: list[str]) -> tuple[int, str]:
        from rectlab.cli.main import main

        out = io.StringIO()
        old = Path.cwd()
        os.chdir(self.cwd)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                try:
                    rc = main(argv)
                except SystemExit as e:
                    rc = int(e.code or 0)
        finally:
            os.chdir(old)
        return rc, out.getvalue()

    def _process(self, argv: list[str]) -> tuple[int, str]:
        env = {**os.environ, **self.env, "PYTHONPATH": str(self.source / "src"), "COLUMNS": "150"}
        done = subprocess.run(argv, cwd=self.cwd, env=env, capture_output=True, text=True, timeout=900)
        return done.returncode, done.stdout + done.stderr

    def rectlab(self, tokens: list[str], fresh: bool = False) -> tuple[int, str]:
        argv = tokens[1:]
        if fresh:
            return self._process([sys.executable, "-m", "rectlab", *argv])
        return self._rectlab_in_process(argv)

    def step(self, page: str, command: str) -> None:
        rule = rule_for(command)
        t0 = time.perf_counter()
        if rule is None:
            self.failures.append(f"{page}: `{command}` matches no rule: add one to RULES in scripts/first_hour.py")
            print(f"FAIL  {page}: {command}\n      no rule in scripts/first_hour.py says how to run it", flush=True)
            return
        if rule.action == "skip":
            print(f"skip  {page}: {command}\n      ({rule.why})", flush=True)
            return
        if self.quick and rule.covered:
            print(f"skip  {page}: {command}\n      (--quick: {rule.covered})", flush=True)
            return
        if rule.needs:
            import rectlab.data as rdata

            if rdata.find(rule.needs) is None:
                print(f"skip  {page}: {command}\n      ({rule.needs} is not on this machine)", flush=True)
                return
        rc, output, ran = 0, "", command
        if command.startswith("mkdir "):
            folder = command.split()[1]
            (self.cwd / folder).mkdir(exist_ok=True)
            self.cwd = self.cwd / folder
        elif command.startswith("bash scripts/setup.sh"):
            tokens = shlex.split(command.split("&&", 1)[1].strip())
            tokens[0] = "rectlab"
            first = not self.main_job_ran  # the main job as the user runs it: a fresh process, worker processes
            self.main_job_ran = True
            tokens = reduce(tokens, main_job=first)
            ran = " ".join(tokens)
            rc, output = self.rectlab(tokens, fresh=first)
        else:
            tokens = shlex.split(command)
            tokens[0] = "rectlab"
            if "<hash>" in command:
                tokens = [self._hash(t) for t in tokens]
            if rule.action == "reduce":
                tokens = reduce(tokens)
            if rule.action == "help":
                rc, output = self._check_synopsis(command)
                ran = f"{' '.join(tokens[:3])} --help (the synopsis' flags)"
            elif rule.action == "script-help":
                script = shlex.split(command)[1]
                rc, output = self._check_script_synopsis(command, script)
                ran = f"python {script} --help (the synopsis' flags)"
            elif rule.action == "own-loop":
                tokens = self._own_loop(tokens)
                ran = " ".join(shlex.quote(t) for t in tokens)
                rc, output = self.rectlab(tokens)
            else:
                if tokens[1] == "run" and "study.toml" in tokens:
                    self._write_study_file()
                ran = " ".join(shlex.quote(t) for t in tokens)
                rc, output = self.rectlab(tokens)
        seconds = time.perf_counter() - t0
        ok = rc == 0
        print(f"{'ok  ' if ok else 'FAIL'}  {page}: {command}\n      ran: {ran} ({seconds:.1f} s)", flush=True)
        if not ok:
            print("      " + output[-3000:].replace("\n", "\n      "), flush=True)
            self.failures.append(f"{page}: `{command}` (ran `{ran}`) exited {rc}")

    def _hash(self, token: str) -> str:
        if "<hash>" not in token:
            return token
        pattern = token.replace("<hash>", "*")
        found = sorted(self.cwd.glob(pattern)) or sorted(self.work.glob(pattern))
        return str(found[0]) if found else token

    def _check_synopsis(self, command: str) -> tuple[int, str]:
        tokens = shlex.split(command)
        rc, text = self.rectlab(["rectlab", *tokens[1:3], "--help"])
        missing = [f for f in re.findall(r"--[\w-]+", command) if f not in text]
        return (0 if rc == 0 and not missing else 1), f"flags not in --help: {missing}\n{text}"

    def _check_script_synopsis(self, command: str, script: str) -> tuple[int, str]:
        rc, text = self._process([sys.executable, str(self.source / script), "--help"])
        missing = [f for f in re.findall(r"--[\w-]+", command) if f not in text]
        return (0 if rc == 0 and not missing else 1), f"flags not in --help: {missing}\n{text}"

    def _own_loop(self, tokens: list[str]) -> list[str]:
        """docs/own-loop.md's study of the reader's own function, smaller: its files are written to the folder it
        runs in, with 1 epoch and 2 seeds, in this process; ``analyze`` reads that study's exported runs."""
        page = (self.source / "docs" / "own-loop.md").read_text()
        if tokens[1] == "run":
            for name, code in re.findall(r"<!-- file: ([\w.]+) -->\n```python\n(.*?)```", page, re.S):
                (self.cwd / name).write_text(code)
            toml = next(b for b in re.findall(r"```toml\n(.*?)```", page, re.S) if "function =" in b)
            toml = re.sub(r"(?m)^seeds = \d+", "seeds = 2", re.sub(r"(?m)^epochs = \d+", "epochs = 1", toml))
            (self.cwd / "my_loop.toml").write_text(toml)
            out = tokens[tokens.index("--out") + 1]
            self._study_out = out
            return ["rectlab", "run", "my_loop.toml", "--executor", "local", "--out", out]
        rc, text = self.rectlab(
            ["rectlab", "export", getattr(self, "_study_out", "runs/my-loop"), "--csv", "results.csv"]
        )
        if rc != 0:
            raise RuntimeError(f"exporting the study for `rectlab analyze` failed: {text[-2000:]}")
        return tokens

    def _write_study_file(self) -> None:
        studies = (self.source / "docs" / "studies.md").read_text()
        toml = next(b for b in re.findall(r"```toml\n(.*?)```", studies, re.S) if "[study]" in b)
        (self.cwd / "study.toml").write_text(toml)

    def block(self, page: str, index: int, code: str) -> None:
        t0 = time.perf_counter()
        folder = self.work / "blocks" / f"{page}-{index}"
        folder.mkdir(parents=True)
        (folder / "block.py").write_text(code)
        old, self.cwd = self.cwd, folder
        rc, output = self._process([sys.executable, "block.py"])
        self.cwd = old
        print(
            f"{'ok  ' if rc == 0 else 'FAIL'}  {page}: python block {index} on its own "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        if rc != 0:
            print("      " + output[-3000:].replace("\n", "\n      "), flush=True)
            self.failures.append(f"{page}: python block {index} fails on its own")


def fresh_copy(target: Path) -> Path:
    """The files a fresh clone of this checkout holds (tracked, or new and not ignored), copied to ``target``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            dst = target / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return target


def stand_in_data(folder: Path) -> dict[str, str]:
    """``RECTLAB_DATA`` with a random Fashion-MNIST in the real format and sizes, when none is installed."""
    import numpy as np

    import rectlab.data as rdata
    from rectlab.data.idx import IDX_FILES, write_idx

    if rdata.find("fashion-mnist") is not None:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, shape in zip(IDX_FILES, [(60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]):
        write_idx(folder / name, rng.integers(0, 256 if len(shape) > 1 else 10, shape, dtype=np.uint8))
    return {"RECTLAB_DATA": str(folder)}


def main(argv: list[str] | None = None, *, say: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-blocks", action="store_true", help="skip the ```python blocks (tests/test_docs.py)")
    parser.add_argument(
        "--quick", action="store_true", help="skip the commands whose work another test does (the rules' `covered`)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="rectlab-first-hour-"))
    try:
        source = fresh_copy(tmp / "clone")
        work = tmp / "work"
        work.mkdir()
        sys.path.insert(0, str(source / "src"))
        for name in [m for m in sys.modules if m == "rectlab" or m.startswith("rectlab.")]:
            del sys.modules[name]  # the copy's rectlab, not another one
        env = stand_in_data(tmp / "fashion-mnist")
        os.environ.update(env)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        pages = [source / "README.md", *sorted((source / "docs").glob("*.md"))]
        walk = Walk(source, work, env, quick=args.quick)
        found = commands(pages)
        later = [c for c in found if "<hash>" in c[1]]
        for name, command in [c for c in found if c not in later] + later:
            walk.step(name, command)
        if not args.no_blocks:
            for page in pages:
                for i, (skip, code) in enumerate(PYTHON.findall(page.read_text()), 1):
                    if not skip:
                        walk.block(page.name, i, code)
        say(
            f"\n{len(found)} commands{'' if args.no_blocks else ' and the python blocks'} in "
            f"{time.perf_counter() - t0:.0f} s; {len(walk.failures)} failed"
        )
        for failure in walk.failures:
            say(f"  {failure}")
        return 1 if walk.failures else 0
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
