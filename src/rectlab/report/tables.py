"""The results table, as rows of strings shared by the terminal (rich), Markdown and HTML outputs."""

from __future__ import annotations

import math

from .collect import StudyResults

__all__ = ["HEADERS", "rows", "verdict_sentence", "fmt"]

HEADERS = ["cell", "n", "mean ± std", "95% CI", "Δ vs baseline [95% CI]", "p", "test", "verdict", "s/epoch",
           "diverged"]


def fmt(v: float, digits: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def rows(results: StudyResults) -> list[list[str]]:
    out = []
    for c in results.cells:
        s = c.summary
        if c.is_baseline:
            delta, p, test, verdict = "baseline", "", "", ""
        elif c.comparison is None:
            delta, p, test, verdict = "no baseline runs", "", "", ""
        else:
            k = c.comparison
            delta = f"{k.diff:+.2f} [{fmt(k.ci_low)}, {fmt(k.ci_high)}]"
            p = "–" if math.isnan(k.p_value) else (f"{k.p_value:.3f}" if k.p_value >= 0.001 else "<0.001")
            test, verdict = k.test, k.verdict
        ci = f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]"
        out.append([c.label, str(s.n), f"{fmt(s.mean)} ± {fmt(s.std)}", ci, delta, p, test, verdict,
                    f"{c.seconds_per_epoch.mean:.3g}", f"{c.diverged}/{s.n + c.diverged}"])
    return out


def verdict_sentence(results: StudyResults) -> str:
    """A plain-language summary of every comparison."""
    metric = results.metric.replace("_", " ")
    parts = []
    for c in results.cells:
        if c.comparison is None:
            continue
        k = c.comparison
        if k.verdict in ("better", "worse"):
            parts.append(
                f"{c.label} is {k.verdict} than {c.baseline_label}: {metric} {k.diff:+.2f} points "
                f"(95% CI {fmt(k.ci_low)} to {fmt(k.ci_high)}, p={k.p_value:.3g}, n={k.n})."
            )
        elif k.verdict == "no significant difference":
            parts.append(
                f"{c.label} vs {c.baseline_label}: no significant difference in {metric} ({k.diff:+.2f} points, "
                f"95% CI {fmt(k.ci_low)} to {fmt(k.ci_high)}, p={k.p_value:.3g}, n={k.n})."
            )
        else:
            parts.append(f"{c.label} vs {c.baseline_label}: {k.verdict}.")
    return " ".join(parts) if parts else "No comparison with a baseline is available yet."
