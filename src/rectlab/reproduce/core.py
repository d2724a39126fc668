"""What a paper reproduction is: the claim, the study parts that test it, and the verdict rules.

A [`Reproduction`][rectlab.reproduce.Reproduction] names the spec in ``rectlab/specs/`` whose ``[study]`` table states
the paper's claim (with its published numbers) and the design it is judged by (alpha, margins, thresholds, stages): the
claim is written there once and read from there. Its [`Part`][rectlab.reproduce.Part] s are the study specs that test it
(run at a scale), an ``analyze`` function turns the results into [`ClaimCheck`][rectlab.reproduce.ClaimCheck] s with
explicit rules, and optional extra tables and plots go with them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import InputError
from ..report.stats import ALPHA, LABELS
from ..study.spec import SCALES, load_spec, studies_dir  # the one list of scales, the specs' folder (re-exported)

__all__ = [
    "VERDICTS",
    "SCALES",
    "FRAGILE",
    "STUDY_RULE",
    "Analysis",
    "ClaimCheck",
    "Context",
    "Design",
    "DesignError",
    "Part",
    "PartRun",
    "Reproduction",
    "Table",
    "claim_table",
    "load_part_spec",
    "overall_verdict",
    "studies_dir",
]

VERDICTS = LABELS  # "reproduced", "weaker than claimed", "not reproduced", "contradicted", "inconclusive"
FRAGILE = 0.8  # a label that fewer than 80% of the seed-bootstrap resamples repeat is marked fragile
SCALE_TEXT = {
    "smoke": "a cut-down run for the test suite (digits, 1-2 epochs): it checks the machinery, not the claim",
    "quick": "a 2-CPU-core run: cheap proxy models (small plain and residual CNNs, MLPs) on Fashion-MNIST "
    "(subsets), trained to a plateau, 8 or more seeds per cell; each study states what its proxy keeps "
    "and changes from the paper",
    "full": "a GPU-sized run close to the paper's setting (CIFAR/SVHN when present, many epochs, 5+ seeds)",
}


@dataclass(frozen=True)
class ClaimCheck:
    """One claim tested with an explicit rule, with the evidence behind its verdict.

    Attributes:
        claim: the claim in words, with the paper's numbers where it gives them.
        verdict: one of `VERDICTS` (see `rectlab.report.stats.judge` for the rule).
        reason: the evidence and the rule that gave the verdict (effect, CI, p, n, MDE, margin).
        primary: primary checks decide the study's overall verdict and form the family that Holm's
            correction runs over; the others are reported beside it, tested at the study's alpha.
        n: seeds (pairs) or trials behind the estimate.
        estimate: the effect (e.g. a difference in test error points, other − base), or a rate.
        ci: its confidence interval ``(low, high)`` at the level the verdict used (``1 - alpha``; ``1 - 2 alpha``
            for one-sided claims: "equivalent", "not-lower", "not-higher").
        p: the uncorrected p-value of the claim's test (two-sided; one-sided / TOST for the one-sided kinds).
        p_holm: ``p`` after Holm's correction over the study's primary checks (NaN for secondary checks).
        mde: the minimum detectable effect (80% power) at the level the verdict used.
        margin: the margin declared for the claim (the smallest effect that counts as the paper's; for a rate
            claim, the claimed level minus the threshold).
        expect: the kind of claim (see `rectlab.report.stats.KINDS`), or "" for a rule of its own (the
            analysis judged it; Holm leaves its verdict alone).
        null: what "no effect" is: 0 for a difference, the threshold for a rate claim.
        alpha: the level the verdict, the interval and the MDE used (Holm's level for a primary check).
        stability: the share of seed-bootstrap resamples (1,000) that give the same verdict; None where the
            check cannot be resampled. Below `FRAGILE` the label is marked fragile.
        n_planned: the n the spec planned for this check (seeds per group, runs or trials), when known.
        needed: for an inconclusive check, the n per group that would decide it (None when unknown).
        evidence: the numbers in words, without the verdict (``reason`` = evidence + rule + notes).
        notes: what else the reader must know (diverged and stalled runs and how they were counted).
        blocked: why the rule could not be applied (e.g. "not converged: ..."); the verdict is then inconclusive.
        sd, paired: the spread behind the test and whether it paired seeds.
        unit, digits, what: how the estimate is printed and named.
        source: the data the check is computed from (`rectlab.reproduce.evidence.Evidence`): re-evaluated at
            Holm's level and resampled for ``stability``; None for checks judged by a rule of their own.
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
    null: float = 0.0
    alpha: float = ALPHA
    stability: float | None = None
    n_planned: int | None = None
    needed: int | None = None
    evidence: str = ""
    notes: str = ""
    blocked: str = ""
    sd: float = math.nan
    paired: bool = True
    unit: str = ""
    digits: int = 2
    what: str = "difference"
    source: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def fragile(self) -> bool:
        """True when fewer than `FRAGILE` of the resamples repeat the verdict."""
        return self.stability is not None and self.stability < FRAGILE

    def record(self) -> dict[str, Any]:
        """The fields scripts rely on (``verdict.json``): NaN and infinity become ``null``."""

        def num(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else float(v)

        return {
            "claim": self.claim,
            "primary": self.primary,
            "verdict": self.verdict,
            "reason": self.reason,
            "kind": self.expect or "own rule",
            "n": self.n,
            "n_planned": self.n_planned,
            "estimate": num(self.estimate),
            "ci": [num(self.ci[0]), num(self.ci[1])],
            "null": self.null,
            "p": num(self.p),
            "p_holm": num(self.p_holm),
            "alpha": num(self.alpha),
            "mde": num(self.mde),
            "margin": num(self.margin),
            "stability": num(self.stability),
            "fragile": self.fragile,
            "needed": self.needed,
            "unit": self.unit.strip(),
        }


@dataclass(frozen=True)
class Table:
    """A table of the reproduction report (rows of already formatted strings)."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Analysis:
    """What a reproduction's ``analyze`` returns: checks, extra tables and plots, notes.

    Custom runners (no study parts) also fill ``runs`` (``{"done": k, ...}``: trials, searches) and
    ``n_planned``; the runner fills ``stage`` (the stage of the design that decided) and ``budget`` (a sentence
    per part on its recorded budget check).
    """

    checks: list[ClaimCheck] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)  # caption -> PNG
    notes: list[str] = field(default_factory=list)
    runs: dict[str, int] = field(default_factory=dict)
    n_planned: dict[str, int] = field(default_factory=dict)
    stage: int = 1
    budget: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Part:
    """One study spec of a reproduction.

    Attributes:
        name: short name, also the sub-directory of the output (``OUT/<name>``).
        spec: file name in ``rectlab/specs/`` (e.g. ``"prelu.toml"``).
        title: what this part tests, for the report.
        scales: the scales it runs at (an ablation too costly for the quick budget runs at full scale only).
        stage: 1, or 2 for the second stage of a two-stage design (see `Design`): it runs only when a primary
            check is still inconclusive after the first stage.

    Every part runs through [`rectlab.study.run_study`][rectlab.study.run_study] (resume, the process and Ray
    executors).
    """

    name: str
    spec: str
    title: str
    scales: tuple[str, ...] = SCALES
    stage: int = 1


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
        design: the claim's design (alpha, margins, thresholds, stages) from its spec.
        digests: the digest of every part's spec and every custom runner's settings (``spec_digest``).
    """

    name: str
    scale: str
    out: Path
    parts: dict[str, PartRun]
    execution: dict[str, Any] = field(default_factory=dict)
    design: Design | None = None
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def plots_dir(self) -> Path:
        path = self.out / "plots"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def option(self, key: str) -> Any:
        """A design value of the claim (a margin, a threshold) from its spec; see `Design.option`."""
        if self.design is None:
            raise DesignError(f"{self.name}: no design loaded; run it through rectlab.reproduce.run")
        return self.design.option(key)

    def record_setup(self, name: str, setup: Any) -> None:
        """Hash a custom runner's resolved settings into the reproduction's ``spec_digest``."""
        values = setup if isinstance(setup, Mapping) else getattr(setup, "__dict__", {"value": repr(setup)})
        blob = json.dumps(values, sort_keys=True, default=str)
        self.digests[name] = hashlib.sha256(blob.encode()).hexdigest()[:16]


class DesignError(InputError):
    """A reproduction's spec lacks a design value it needs (the message names the file and the key)."""


@dataclass(frozen=True)
class Design:
    """How a claim is judged, fixed in its spec before running (``[study] reproduce = {...}``).

    Attributes:
        where: the spec file it came from.
        alpha: the family-wise error rate of the study's primary checks (Holm), default 0.05.
        stages: the alpha spent at each stage: ``(alpha,)`` for a fixed design, ``(a1, a2)`` with
            ``a1 + a2 <= alpha`` for a two-stage one (the second stage's parts run only when a primary check
            is inconclusive after the first; the verdict then uses ``a2`` on all the runs).
        options: margins, thresholds and levels of the checks, by name (``margin``, ``stall_threshold``, ...).
    """

    where: str
    alpha: float = 0.05
    stages: tuple[float, ...] = (0.05,)
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise DesignError(f"{self.where}: alpha must lie in (0, 1), got {self.alpha}")
        if not 1 <= len(self.stages) <= 2 or any(a <= 0 for a in self.stages) or sum(self.stages) > self.alpha + 1e-12:
            raise DesignError(
                f"{self.where}: stages must be one or two positive alphas that sum to at most alpha "
                f"({self.alpha:g}), got {list(self.stages)}"
            )

    @classmethod
    def from_table(cls, where: str, table: Mapping[str, Any]) -> Design:
        """From the ``reproduce`` table of a spec's ``[study]``: ``alpha``, ``stages`` and the options."""
        options = dict(table)
        alpha = float(options.pop("alpha", 0.05))
        stages = tuple(float(a) for a in options.pop("stages", [alpha]))
        return cls(where, alpha, stages, options)

    def option(self, key: str) -> Any:
        """The design value ``key``.

        Raises:
            DesignError: when the spec does not declare it (no silent default: a margin is part of the claim).
        """
        if key not in self.options:
            known = ", ".join(sorted(self.options)) or "none"
            raise DesignError(f"{self.where}: [study] reproduce has no {key!r}; declared: {known}")
        return self.options[key]

    def record(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "stages": list(self.stages), **dict(self.options)}


@functools.lru_cache(maxsize=64)
def _read_toml(path: str, mtime: float) -> dict[str, Any]:
    return tomllib.loads(Path(path).read_text())


def claim_table(spec: str, studies: str | Path | None = None) -> dict[str, Any]:
    """The ``[study]`` table of a reproduction's spec: ``paper``, ``claim``, ``published`` and ``reproduce``.

    Raises:
        DesignError: when the file has no ``claim`` or ``paper``.
    """
    path = studies_dir(studies) / spec
    table = dict(_read_toml(str(path), path.stat().st_mtime).get("study", {}))
    for key in ("paper", "claim"):
        if not table.get(key):
            raise DesignError(f'{path}: [study] needs {key} = "..." (the paper\'s claim is stated in its spec)')
    return table


@dataclass(frozen=True)
class Reproduction:
    """A registered paper reproduction (see ``rectlab reproduce --list``).

    The paper, the claim with its published numbers and the design (alpha, margins, thresholds, stages) are
    stated once, in the ``[study]`` table of ``spec``; the properties below read them from there.

    Attributes:
        name: registry name (``"prelu"``).
        summary: one line for ``--list``.
        spec: the spec file (in ``rectlab/specs/``) whose ``[study]`` table states the claim.
        parts: the study specs it runs (empty when ``runner`` is given).
        analyze: ``analyze(ctx) -> Analysis`` after the parts ran.
        runner: a custom runner ``runner(ctx) -> Analysis`` replacing parts + analyze (``xor-prelu``).
        notes: how our setting differs from the paper's, shown in every report.
    """

    name: str
    summary: str
    spec: str
    parts: tuple[Part, ...] = ()
    analyze: Callable[[Context], Analysis] | None = None
    runner: Callable[[Context], Analysis] | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if (self.runner is None) == (not self.parts):
            raise ValueError(f"reproduction {self.name!r} needs either parts (with analyze) or a runner")

    def table(self, studies: str | Path | None = None) -> dict[str, Any]:
        """The claim's ``[study]`` table (see `claim_table`)."""
        return claim_table(self.spec, studies)

    @property
    def paper(self) -> str:
        """Authors, year, title and arXiv id."""
        return str(self.table()["paper"])

    @property
    def claim(self) -> str:
        """The claim tested, quoting the published numbers."""
        return str(self.table()["claim"])

    @property
    def published(self) -> tuple[tuple[str, str], ...]:
        """``(setting, published value)`` rows shown in the report."""
        return tuple((str(a), str(b)) for a, b in self.table().get("published", []))

    def design(self, studies: str | Path | None = None) -> Design:
        """The design the claim is judged by."""
        return Design.from_table(str(studies_dir(studies) / self.spec), self.table(studies).get("reproduce", {}))


STUDY_RULE = (
    "The study's verdict comes from its primary checks: contradicted if any primary check is "
    "contradicted; otherwise not reproduced if any is not reproduced; otherwise inconclusive if any is "
    "inconclusive; otherwise weaker than claimed if any is weaker than claimed; otherwise reproduced."
)


def overall_verdict(checks: list[ClaimCheck]) -> tuple[str, str]:
    """Combine the primary checks into the study's verdict by `STUDY_RULE`.

    Order: contradicted, not reproduced, inconclusive, weaker than claimed, reproduced: the first label
    that any primary check carries wins. The reason lists the primary checks that decided it.
    """
    primary = [c for c in checks if c.primary]
    if not primary:
        return "inconclusive", "no primary claim could be tested at this scale"
    for label in ("contradicted", "not reproduced", "inconclusive", "weaker than claimed"):
        deciding = [c for c in primary if c.verdict == label]
        if deciding:
            done = sum(c.verdict == "reproduced" for c in primary)
            head = f"{done} of {len(primary)} primary claims reproduced; " if done else ""
            return label, head + "; ".join(f"{c.claim}: {c.verdict}: {c.reason}" for c in deciding)
    return "reproduced", "; ".join(f"{c.claim}: {c.reason}" for c in primary)


def load_part_spec(
    repro: Reproduction, part_spec: str, scale: str, studies: str | Path | None = None, dataset: str | None = None
) -> Any:
    """The `rectlab.study.StudySpec` of one part at ``scale`` (``dataset`` overrides the spec's)."""
    spec = load_spec(studies_dir(studies) / part_spec, scale=scale)
    if dataset is not None:
        if "dataset" in spec.grid:
            raise InputError(f"{part_spec} varies the dataset in its grid; --dataset cannot override it")
        spec = dataclasses.replace(spec, base=spec.base.replace(dataset=dataset))
    return spec
