"""The results table and the sentences under it, as strings shared by the terminal (rich), Markdown and HTML."""

from __future__ import annotations

import math

from .collect import PLATEAU_TOL, PLATEAU_WINDOW, StudyResults, has_train_loss

__all__ = ["HEADERS", "VERDICT_COL", "fmt", "power_sentence", "rows", "runs_sentences", "verdict_sentence"]

HEADERS = ["cell", "n", "mean ± std", "95% CI", "Δ vs baseline [95% CI]", "p (Holm)", "MDE", "test", "verdict",
           "s/epoch"]
VERDICT_COL = HEADERS.index("verdict")


def fmt(v: float | None, digits: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _p(p: float) -> str:
    return "–" if math.isnan(p) else (f"{p:.3f}" if p >= 0.001 else "<0.001")


def rows(results: StudyResults) -> list[list[str]]:
    out = []
    for c in results.cells:
        s = c.summary
        if c.is_baseline:
            delta, p, mde, test, verdict = "baseline", "", "", "", ""
        elif c.comparison is None:
            delta, p, mde, test, verdict = "no baseline runs", "", "", "", ""
        else:
            k = c.comparison
            delta = f"{k.diff:+.2f} [{fmt(k.ci_low)}, {fmt(k.ci_high)}]"
            p, mde, test, verdict = _p(k.p_holm if not math.isnan(k.p_holm) else k.p_value), fmt(k.mde), k.test, \
                k.verdict
        n = str(s.n) + (f" (+{len(c.diverged)} diverged)" if c.diverged else "")
        out.append([c.label, n, f"{fmt(s.mean)} ± {fmt(s.std)}", f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]", delta, p,
                    mde, test, verdict, f"{c.seconds_per_epoch.mean:.3g}" if c.seconds_per_epoch.n else "–"])
    return out


def verdict_sentence(results: StudyResults) -> str:
    """A plain-language summary of every comparison (p-values Holm-corrected over the study's comparisons)."""
    metric = results.metric.replace("_", " ")
    parts = []
    for c in results.cells:
        if c.comparison is None:
            continue
        k = c.comparison
        ci = f"95% CI {fmt(k.ci_low)} to {fmt(k.ci_high)}, Holm p={k.p_holm:.3g}, n={k.n}"
        if k.verdict in ("better", "worse"):
            parts.append(f"{c.label} is {k.verdict} than {c.baseline_label}: {metric} {k.diff:+.2f} points ({ci}).")
        elif k.verdict == "no significant difference":
            parts.append(f"{c.label} vs {c.baseline_label}: no significant difference in {metric} "
                         f"({k.diff:+.2f} points, {ci}).")
        else:
            parts.append(f"{c.label} vs {c.baseline_label}: {k.verdict}.")
    return " ".join(parts) if parts else "No comparison with a baseline is available yet."


def power_sentence(results: StudyResults) -> str:
    """The minimum detectable effect of each comparison: what a "no significant difference" can rule out."""
    parts = [f"{c.label} {fmt(c.comparison.mde)}" for c in results.cells
             if c.comparison is not None and math.isfinite(c.comparison.mde)]
    if not parts:
        return ""
    n = min(c.comparison.n for c in results.cells if c.comparison is not None)
    return (f"Minimum detectable effect (80% power, alpha 0.05, from the observed seed-to-seed spread, n={n}): "
            f"{', '.join(parts)} points of {results.metric.replace('_', ' ')}; smaller true differences can go "
            "undetected.")


def runs_sentences(results: StudyResults) -> list[str]:
    """Sentences on runs that are not ordinary results: unconverged, diverged, failed or unfinished, and files
    set aside (checkpoints that did not match the database)."""
    out = []
    unconverged = [f"{c.label} seeds {', '.join(map(str, c.unconverged))}" for c in results.cells if c.unconverged]
    done = sum(has_train_loss(r) for c in results.cells for r in c.runs)  # runs whose plateau can be judged
    if unconverged:
        out.append(f"Not converged (the last {PLATEAU_WINDOW:.0%} of epochs brought more than {PLATEAU_TOL:.0%} of "
                   f"the training loss's fall): {'; '.join(unconverged)}. Train longer before trusting final values.")
    elif done:
        out.append(f"All {done} finished runs reached a plateau (the last {PLATEAU_WINDOW:.0%} of epochs brought at "
                   f"most {PLATEAU_TOL:.0%} of the training loss's fall).")
    for r in results.diverged:
        info = r.get("extras", {}).get("diverged", {})
        out.append(f"Diverged: {_cell_label(r)}, seed {r['seed']} (loss {info.get('loss', 'NaN')} in epoch "
                   f"{info.get('epoch', '?')}, step {info.get('step', '?')}).")
    for r in results.failed:
        first = (r.get("error") or "no error recorded").splitlines()[0]
        out.append(f"Failed: {_cell_label(r)}, seed {r['seed']}: {first}")
    other = [r for r in results.incomplete if r["status"] != "failed"]
    if other:
        statuses = ", ".join(sorted({r["status"] for r in other}))
        out.append(f"{len(other)} run(s) not finished ({statuses}); re-run the same command to finish them.")
    for item in results.set_aside:
        out.append(f"Set aside (kept, not used; the run was trained again from its last consistent state): "
                   f"{item['path']}: {item['reason']}.")
    return out


def _cell_label(run: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in run["cell"].items()) or "run"
