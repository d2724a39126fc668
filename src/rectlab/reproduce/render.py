"""The reproduction report: ``reproduction.md`` and a self-contained ``reproduction.html``.

Layout: the paper's claim with its published numbers, the scale and how our setting differs, the design
(alpha, stages, margins: fixed in the spec), the verdict with its reason and the rule that combines the
checks, every claim check (rule, evidence, stability), the runs (done, diverged, stalled, failed), the
recorded budget checks, our results per part (n, mean ± std, 95% CI, difference to the baseline with its
CI, p and MDE), extra tables, and the plots. Built with the shared `rectlab.report.markup.Document`.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..report.markup import Document, verdict_class
from ..report.tables import HEADERS, VERDICT_COL, rows, runs_sentences
from .core import FRAGILE, SCALE_TEXT, STUDY_RULE, Analysis, ClaimCheck, Context, Reproduction

__all__ = ["RULE_NOTE", "STATS_NOTE", "check_row", "write_reproduction"]

RULE_NOTE = (
    "Rule of a claim with a margin m (the smallest effect that counts as the paper's, fixed in the spec), "
    "judged on its confidence interval at the level Holm's correction tests it at: reproduced = "
    "significant in the claimed direction and the interval does not exclude m; weaker than claimed = "
    "significant in the claimed direction, the interval excludes m; not reproduced = not significant and "
    "the interval excludes m; contradicted = significant in the opposite direction; inconclusive = "
    "otherwise. Rate claims use the same labels against a threshold (e.g. 'most' = 1/2) and a claimed "
    "level (e.g. 'always' = 0.9). 'Comparable within ±m' is reproduced when the 1 − 2α interval lies "
    "inside ±m and contradicted when outside; 'does not improve (or worsen) by m' when it lies on the "
    f"claimed side of m, contradicted when beyond it. Stability: the share of 1,000 seed-bootstrap "
    f"resamples giving the same label; below {FRAGILE:g} the label is fragile."
)
STATS_NOTE = (
    "Statistics: per-seed values; mean ± sample std; differences by a paired t-test when both groups ran the "
    "same seeds (Welch's t-test otherwise; exact sign-flip / permutation tests when values tie, so zero "
    "variance never gives p = 0); rates by the Wilson interval and its score test; fewer than 3 values "
    "per group: no test. The primary claims' p-values are Holm-corrected together, and each primary "
    "claim's interval and MDE (minimum detectable effect at 80% power from the observed spread) are at "
    "the level Holm tests it at; secondary claims at the study's alpha."
)
CHECK_HEADERS = [
    "claim",
    "verdict",
    "stability",
    "evidence and rule",
    "n run / planned",
    "estimate [CI]",
    "p (Holm)",
    "alpha",
    "MDE",
    "margin",
    "primary",
]
PART_PLOTS = (("train_loss", "training loss"), ("test_error", "test error"), ("final", "final error per cell"))


def _num(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


def stability_text(c: ClaimCheck) -> str:
    """``0.93``, ``0.61 (fragile)`` or "–"."""
    if c.stability is None:
        return "–"
    return f"{c.stability:.2f}" + (" (fragile)" if c.fragile else "")


def margin_text(c: ClaimCheck) -> str:
    """The margin, or for a rate claim its threshold and claimed level."""
    if c.expect in ("lower", "higher") and c.null:
        level = "" if c.margin is None else f", level {c.null + (c.margin if c.expect == 'higher' else -c.margin):g}"
        return f"threshold {c.null:g}{level}"
    return _num(c.margin)


def check_row(c: ClaimCheck) -> list[str]:
    """One row of the claims table."""
    sign = "" if c.null else "+"
    estimate = (
        "–" if math.isnan(c.estimate) else (f"{c.estimate:{sign}.{c.digits}f} [{_num(c.ci[0])}, {_num(c.ci[1])}]")
    )
    p = _num(c.p) + (f" ({_num(c.p_holm)})" if not math.isnan(c.p_holm) else "")
    n = f"{c.n or '–'} / {c.n_planned}" if c.n_planned else str(c.n or "–")
    return [
        c.claim,
        c.verdict,
        stability_text(c),
        c.reason,
        n,
        estimate,
        p,
        f"{c.alpha:.3g}",
        _num(c.mde),
        margin_text(c),
        "yes" if c.primary else "no",
    ]


def _setup_line(spec) -> str:
    base = spec.base
    shown = [
        f"model={base.model}",
        f"dataset={base.dataset}",
        f"epochs={base.epochs}",
        f"batch_size={base.batch_size}",
        f"optimizer={base.optimizer}",
        f"lr={base.lr}",
        f"weight_decay={base.weight_decay}",
    ]
    shown += [f"{k}={getattr(base, k)}" for k in ("model_kwargs", "train_limit", "test_limit") if getattr(base, k)]
    grid = "; ".join(f"{k} ∈ {list(v)}" for k, v in spec.grid.items())
    return f"{', '.join(shown)}; grid: {grid}; seeds {list(spec.seeds)}"


def _design_text(ctx: Context, analysis: Analysis) -> str:
    d = ctx.design
    if d is None:
        return "–"
    stages = (
        f"two stages, alpha {d.stages[0]:g} then {d.stages[1]:g} (decided at stage {analysis.stage})"
        if len(d.stages) == 2
        else f"fixed, alpha {d.alpha:g}"
    )
    options = ", ".join(f"{k} = {v}" for k, v in d.options.items())
    return f"{stages}; {options} (declared in {Path(d.where).name} before running)"


def _header(doc: Document, repro: Reproduction, ctx: Context, analysis: Analysis, seconds: float, command: str) -> None:
    studies = ctx.execution.get("studies")
    items = [
        ("paper", repro.table(studies)["paper"]),
        ("claim", repro.table(studies)["claim"]),
        ("scale", f"{ctx.scale} — {SCALE_TEXT.get(ctx.scale)}"),
        ("design", _design_text(ctx, analysis)),
        ("command", f"{command} ({seconds:.0f} s)"),
    ]
    if repro.notes:
        items.append(("our setting vs the paper's", repro.notes))
    published = [[str(a), str(b)] for a, b in repro.table(studies).get("published", [])]
    doc.items(items).heading("Published numbers").table(["setting", "published"], published)


def _budget(doc: Document, name: str, p, analysis: Analysis) -> None:
    sentence = analysis.budget.get(name)
    if sentence:
        doc.note(f"Budget check: {sentence}.")
    cells = [c for c in p.results.cells if c.budget]
    if cells:
        doc.table(
            ["cell", "metric at the budget", "at twice the budget", "shift", "within tolerance"],
            [
                [
                    c.label,
                    f"{c.budget['budget']:.3f}",
                    f"{c.budget['doubled']:.3f}",
                    f"{c.budget['shift']:+.3f}",
                    "yes" if c.budget["passed"] else "no",
                ]
                for c in cells
            ],
        )


def _parts(doc: Document, ctx: Context, analysis: Analysis) -> None:
    for name, p in ctx.parts.items():
        doc.heading(f"Part {name}: {p.part.title}")
        doc.para(f"{_setup_line(p.spec)} (full report: {name}/report.html)")
        doc.table(list(HEADERS), rows(p.results), verdict_col=VERDICT_COL)
        for line in runs_sentences(p.results):
            doc.note(line)
        _budget(doc, name, p, analysis)
        for key, title in PART_PLOTS:
            doc.image(p.dir / "plots" / f"{key}.png", f"{name}: {title}")


def write_reproduction(
    repro: Reproduction, ctx: Context, analysis: Analysis, verdict: str, reason: str, seconds: float, command: str
) -> tuple[Path, Path]:
    """Write the Markdown and HTML reports into ``ctx.out``; return their paths."""
    doc = Document(f"Reproduction {repro.name}: {verdict}", title_class=verdict_class(verdict))
    _header(doc, repro, ctx, analysis, seconds, command)
    doc.heading(f"Verdict: {verdict}").para(reason, verdict=True).note(STUDY_RULE)
    doc.heading("Claims checked").table(
        CHECK_HEADERS, [check_row(c) for c in analysis.checks], verdict_col=1, empty="no checks"
    )
    doc.note(RULE_NOTE)
    for note in analysis.notes:
        doc.quote(note)
    _parts(doc, ctx, analysis)
    for t in analysis.tables:
        doc.heading(t.title).table(t.headers, t.rows, note=t.note)
    for caption, path in analysis.plots.items():
        doc.heading(caption, level=3).image(path, caption)
    doc.note(STATS_NOTE)
    return doc.write(ctx.out, "reproduction")
