"""What a paper reproduction is: the claim, the study parts that test it, and the verdict rules.

A [`Reproduction`][rectlab.reproduce.Reproduction] names a paper's claim (with its published numbers), the study specs
in ``rectlab/specs/`` that test it (its [`Part`][rectlab.reproduce.Part] s, run at a scale), an ``analyze`` function
that turns the results into [`ClaimCheck`][rectlab.reproduce.ClaimCheck] s with explicit rules, and optional extra
tables and plots.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..study.spec import SCALES, studies_dir  # the one list of scales, the specs' folder (re-exported)

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
    "smoke": "a cut-down run for the test suite (digits, 1-2 epochs): it checks the machinery, not the claim",
    "quick": "a 2-CPU-core run: cheap proxy models (MLPs, deep and residual MLPs, small CNNs) on Fashion-MNIST "
             "(subsets), trained to a plateau, 8 or more seeds per cell; each study states what its proxy keeps "
             "and changes from the paper",
    "full": "a GPU-sized run close to the paper's setting (CIFAR/SVHN when present, many epochs, 5+ seeds)",
}


@dataclass(frozen=True)
class ClaimCheck:
    """One claim tested with an explicit rule, with the evidence behind its verdict.

    Attributes:
        claim: the claim in words, with the paper's numbers where it gives them.
        verdict: "reproduced", "not reproduced" or "inconclusive".
        reason: the evidence and the rule that gave the verdict (effect, 95% CI, p, n, MDE, margin).
        primary: primary checks decide the study's overall verdict and form the family that Holm's
            correction runs over; the others are reported beside it with uncorrected p-values.
        n: seeds (pairs) or trials behind the estimate.
        estimate: the effect (e.g. a difference in test error points, other − base).
        ci: its 95% confidence interval ``(low, high)``.
        p: the uncorrected two-sided p-value (a TOST p-value for equivalence claims).
        p_holm: ``p`` after Holm's correction over the study's primary checks (NaN for secondary checks).
        mde: the minimum detectable effect (80% power, alpha 0.05) from the observed spread.
        margin: the equivalence margin declared for the claim (the size of effect that matters).
        expect: the rule (see `rectlab.report.stats.judge`): "lower" / "higher" (the claimed sign of
            ``estimate``), "not-lower", "equivalent", or "" for a rule of its own (the analysis judged it;
            Holm leaves its verdict alone).
        evidence: the numbers in words, without the verdict (``reason`` = evidence + rule + notes).
        notes: what else the reader must know (diverged runs and how they were counted).
        blocked: why the rule could not be applied (e.g. "not converged: ..."); the verdict is then inconclusive.
        sd, paired: the spread behind the test and whether it paired seeds (to say how many seeds would
            decide an inconclusive check).
        unit, digits: how the estimate is printed.
    """

    claim: str
    verdict: str
    reason: str
    primary: bool = True
    n: int = 0
    estimate: float = math.nan
    ci: tuple[float, float] = (math.nan, math.nan)
    p: float = math.nan
    p_holm: float = math.nan
    mde: float = math.nan
    margin: float | None = None
    expect: str = ""
    evidence: str = ""
    notes: str = ""
    blocked: str = ""
    sd: float = math.nan
    paired: bool = True
    unit: str = ""
    digits: int = 2

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def record(self) -> dict[str, Any]:
        """The fields scripts rely on (``verdict.json``): NaN and infinity become ``null``."""

        def num(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else float(v)

        return {"claim": self.claim, "primary": self.primary, "verdict": self.verdict, "reason": self.reason,
                "n": self.n, "estimate": num(self.estimate), "ci": [num(self.ci[0]), num(self.ci[1])],
                "p": num(self.p), "p_holm": num(self.p_holm), "mde": num(self.mde), "margin": num(self.margin)}


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
        spec: file name in ``rectlab/specs/`` (e.g. ``"prelu.toml"``).
        title: what this part tests, for the report.
        scales: the scales it runs at (an ablation too costly for the quick budget runs at full scale only).

    Every part runs through [`rectlab.study.run_study`][rectlab.study.run_study] (resume, the process and Ray
    executors).
    """

    name: str
    spec: str
    title: str
    scales: tuple[str, ...] = SCALES


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
