"""The reproduction report: ``reproduction.md`` and a self-contained ``reproduction.html``.

Layout: the paper's claim with its published numbers, the scale and how our setting differs, the
verdict with its reason, every claim check (rule and evidence), the runs (done, diverged, failed),
our results per part (n, mean ± std, 95% CI, difference to the baseline with its CI, p and MDE),
extra tables, and the plots. Built with the shared `rectlab.report.markup.Document`.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..report.markup import Document, verdict_class
from ..report.tables import HEADERS, VERDICT_COL, rows, runs_sentences
from .core import SCALE_TEXT, Analysis, ClaimCheck, Context, Reproduction

__all__ = ["write_reproduction"]

STATS_NOTE = ("Statistics: per-seed values; mean ± sample std; 95% CI from Student's t; differences by a paired t-test "
              "when both groups ran the same seeds (Welch's t-test otherwise; exact sign-flip / permutation tests "
              "when values tie, so zero variance never gives p = 0); p-values of the primary claims Holm-corrected "
              "together; MDE = minimum detectable effect at 80% power and alpha 0.05 from the observed spread. "
              "Verdict rule: reproduced = the claimed sign, significant after correction; not reproduced = "
              "significantly the opposite, or the 95% CI excludes an effect as large as the claim's margin; "
              "otherwise inconclusive.")
CHECK_HEADERS = ["claim", "verdict", "evidence and rule", "n", "estimate [95% CI]", "p (Holm)", "MDE", "margin",
                 "primary"]
PART_PLOTS = (("train_loss", "training loss"), ("test_error", "test error"), ("final", "final error per cell"))


def _num(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


def check_row(c: ClaimCheck) -> list[str]:
    """One row of the claims table."""
    estimate = "–" if math.isnan(c.estimate) else f"{c.estimate:+.{c.digits}f} [{_num(c.ci[0])}, {_num(c.ci[1])}]"
    p = _num(c.p) + (f" ({_num(c.p_holm)})" if not math.isnan(c.p_holm) else "")
    return [c.claim, c.verdict, c.reason, str(c.n or "–"), estimate, p, _num(c.mde), _num(c.margin),
            "yes" if c.primary else "no"]


def _setup_line(spec) -> str:
    base = spec.base
    shown = [f"model={base.model}", f"dataset={base.dataset}", f"epochs={base.epochs}",
             f"batch_size={base.batch_size}", f"optimizer={base.optimizer}", f"lr={base.lr}",
             f"weight_decay={base.weight_decay}"]
    shown += [f"{k}={getattr(base, k)}" for k in ("model_kwargs", "train_limit", "test_limit") if getattr(base, k)]
    grid = "; ".join(f"{k} ∈ {list(v)}" for k, v in spec.grid.items())
    return f"{', '.join(shown)}; grid: {grid}; seeds {list(spec.seeds)}"


def _header(doc: Document, repro: Reproduction, ctx: Context, seconds: float, command: str) -> None:
    items = [("paper", repro.paper), ("claim", repro.claim), ("scale", f"{ctx.scale} — {SCALE_TEXT.get(ctx.scale)}"),
             ("command", f"{command} ({seconds:.0f} s)")]
    if repro.notes:
        items.append(("our setting vs the paper's", repro.notes))
    doc.items(items).heading("Published numbers").table(["setting", "published"], [list(r) for r in repro.published])


def _parts(doc: Document, ctx: Context) -> None:
    for name, p in ctx.parts.items():
        doc.heading(f"Part {name}: {p.part.title}")
        doc.para(f"{_setup_line(p.spec)} (full report: {name}/report.html)")
        doc.table(list(HEADERS), rows(p.results), verdict_col=VERDICT_COL)
        for line in runs_sentences(p.results):
            doc.note(line)
        for key, title in PART_PLOTS:
            doc.image(p.dir / "plots" / f"{key}.png", f"{name}: {title}")


def write_reproduction(repro: Reproduction, ctx: Context, analysis: Analysis, verdict: str, reason: str,
                       seconds: float, command: str) -> tuple[Path, Path]:
    """Write the Markdown and HTML reports into ``ctx.out``; return their paths."""
    doc = Document(f"Reproduction {repro.name}: {verdict}", title_class=verdict_class(verdict))
    _header(doc, repro, ctx, seconds, command)
    doc.heading(f"Verdict: {verdict}").para(reason, verdict=True)
    doc.heading("Claims checked").table(CHECK_HEADERS, [check_row(c) for c in analysis.checks], verdict_col=1,
                                        empty="no checks")
    for note in analysis.notes:
        doc.quote(note)
    _parts(doc, ctx)
    for t in analysis.tables:
        doc.heading(t.title).table(t.headers, t.rows, note=t.note)
    for caption, path in analysis.plots.items():
        doc.heading(caption, level=3).image(path, caption)
    doc.note(STATS_NOTE)
    return doc.write(ctx.out, "reproduction")
