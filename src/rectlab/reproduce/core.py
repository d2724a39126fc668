"""What a paper reproduction is: the claim, the study parts that test it, and the verdict rules.

A :class:`Reproduction` names a paper's claim (with its published numbers), the study specs in
``studies/`` that test it (its :class:`Part` s, run at a scale), an ``analyze`` function that turns
the results into :class:`ClaimCheck` s with explicit rules, and optional extra tables and plots.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..study.spec import SCALES  # the one list of scales (re-exported here)

__all__ = [
    "VERDICTS",
    "SCALES",
    "Analysis",
    "ClaimCheck",
    "Context",
    "Part",
    "PartRun",
    "Reproduction",
    "Table",
    "overall_verdict",
    "studies_dir",
]

VERDICTS = ("reproduced", "not reproduced", "inconclusive")
SCALE_TEXT = {
    "smoke": "a cut-down run for the test suite (digits, 1 epoch): it checks the machinery, not the claim",
    "quick": "a CPU-sized run (Fashion-MNIST subsets, small models, a few epochs, 2-3 seeds); after a few "
             "epochs, differences reflect learning speed as much as final accuracy",
    "full": "a GPU-sized run close to the paper's setting (CIFAR/SVHN when present, many epochs, 5 seeds)",
}


@dataclass(frozen=True)
class ClaimCheck:
    """One claim tested with an explicit rule.

    Attributes:
        claim: the claim in words, with the paper's numbers where it gives them.
        verdict: "reproduced", "not reproduced" or "inconclusive".
        reason: the evidence and the rule that gave the verdict (effect, 95% CI, p, n).
        primary: primary checks decide the study's overall verdict; the others are reported beside it.
    """

    claim: str
    verdict: str
    reason: str
    primary: bool = True

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


@dataclass(frozen=True)
class Table:
    """A table of the reproduction report (rows of already formatted strings)."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Analysis:
    """What a reproduction's ``analyze`` returns: checks, extra tables and plots, notes."""

    checks: list[ClaimCheck] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)  # caption -> PNG
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Part:
    """One study spec of a reproduction.

    Attributes:
        name: short name, also the sub-directory of the output (``OUT/<name>``).
        spec: file name in ``studies/`` (e.g. ``"prelu.toml"``).
        title: what this part tests, for the report.
        execute: a custom executor ``execute(spec, out_dir, **execution) -> None`` for parts the
            standard runner cannot express (e.g. pruning mid-training); default :func:`rectlab.study.run_study`.
    """

    name: str
    spec: str
    title: str
    execute: Callable[..., None] | None = None


@dataclass
class PartRun:
    """A part after it ran: its resolved spec, its directory and its collected results."""

    part: Part
    spec: Any  # rectlab.study.StudySpec
    dir: Path
    results: Any  # rectlab.report.StudyResults


@dataclass
class Context:
    """Everything ``analyze`` may use.

    Attributes:
        name, scale: the reproduction and the scale it ran at.
        out: the output directory; ``plots_dir`` is where extra plots go.
        parts: ``{part name: PartRun}`` (empty for custom runners).
        execution: the execution options (device, data_dir, ...) given to the runner.
    """

    name: str
    scale: str
    out: Path
    parts: dict[str, PartRun]
    execution: dict[str, Any] = field(default_factory=dict)

    @property
    def plots_dir(self) -> Path:
        path = self.out / "plots"
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True)
class Reproduction:
    """A registered paper reproduction (see ``rectlab reproduce --list``).

    Attributes:
        name: registry name (``"prelu"``).
        summary: one line for ``--list``.
        paper: authors, year, title and arXiv id.
        claim: the claim tested, quoting the published numbers.
        published: ``(setting, published value)`` rows shown in the report.
        parts: the study specs it runs (empty when ``runner`` is given).
        analyze: ``analyze(ctx) -> Analysis`` after the parts ran.
        runner: a custom runner ``runner(ctx) -> Analysis`` replacing parts + analyze (``xor-prelu``).
        notes: how our setting differs from the paper's, shown in every report.
    """

    name: str
    summary: str
    paper: str
    claim: str
    published: tuple[tuple[str, str], ...]
    parts: tuple[Part, ...] = ()
    analyze: Callable[[Context], Analysis] | None = None
    runner: Callable[[Context], Analysis] | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if (self.runner is None) == (not self.parts):
            raise ValueError(f"reproduction {self.name!r} needs either parts (with analyze) or a runner")


def overall_verdict(checks: list[ClaimCheck]) -> tuple[str, str]:
    """Combine the primary checks into the study's verdict.

    Rule: "not reproduced" if any primary check is not reproduced; "reproduced" if every primary
    check is; otherwise "inconclusive". The reason lists the primary checks that decided it.
    """
    primary = [c for c in checks if c.primary]
    if not primary:
        return "inconclusive", "no primary claim could be tested at this scale"
    failed = [c for c in primary if c.verdict == "not reproduced"]
    if failed:
        return "not reproduced", "; ".join(f"{c.claim}: {c.reason}" for c in failed)
    open_ = [c for c in primary if c.verdict == "inconclusive"]
    if open_:
        done = len(primary) - len(open_)
        head = f"{done} of {len(primary)} primary claims reproduced; still open: " if done else ""
        return "inconclusive", head + "; ".join(f"{c.claim}: {c.reason}" for c in open_)
    return "reproduced", "; ".join(f"{c.claim}: {c.reason}" for c in primary)


def studies_dir(explicit: str | Path | None = None) -> Path:
    """The folder of the study specs.

    Looked up in order: ``explicit`` (``--studies DIR``), ``$RECTLAB_STUDIES``, and the specs shipped
    inside the package (``rectlab/studies/*.toml``, found with :mod:`importlib.resources`, so an installed
    wheel reproduces from any folder).

    Raises:
        FileNotFoundError: naming every place that was tried and how to point at the folder.
    """
    tried: list[Path] = []
    if explicit is not None:
        tried.append(Path(explicit))
    elif os.environ.get("RECTLAB_STUDIES"):
        tried.append(Path(os.environ["RECTLAB_STUDIES"]))
    else:
        tried.append(Path(str(resources.files("rectlab") / "studies")))
    for path in tried:
        if (path / "prelu.toml").is_file():
            return path
    raise FileNotFoundError(
        f"the study specs (*.toml) were not found; tried: {', '.join(map(str, tried))}. "
        "Pass --studies DIR or set RECTLAB_STUDIES to a folder of study specs (a copy of rectlab/studies/)"
    )
