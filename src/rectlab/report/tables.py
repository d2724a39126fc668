"""The results table and the sentences under it, as strings shared by the terminal (rich), Markdown and HTML."""

from __future__ import annotations

import math

from .collect import PLATEAU_TOL, PLATEAU_WINDOW, STALL_TOL, StudyResults, has_train_loss
from .stats import ALPHA, MIN_SEEDS, Comparison

__all__ = [
    "HEADERS",
    "VERDICT_COL",
    "fmt",
    "power_sentence",
    "rows",
    "runs_sentences",
    "too_few_sentence",
    "verdict_sentence",
]

HEADERS = ["cell", "n", "mean ± std", "95% CI", "Δ vs baseline [CI]", "p (Holm)", "MDE", "test", "verdict", "s/epoch"]
VERDICT_COL = HEADERS.index("verdict")


def fmt(v: float | None, digits: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _p(p: float) -> str:
    return "–" if math.isnan(p) else (f"{p:.3f}" if p >= 0.001 else "<0.001")


def _level(alpha: float) -> str:
    """The confidence level of an interval at ``alpha``, e.g. "97.5%" (empty for the usual 95%)."""
    return "" if abs(alpha - ALPHA) < 1e-12 else f" {100 * (1 - alpha):.4g}%"


def rows(results: StudyResults) -> list[list[str]]:
    """The table rows: one per cell. A comparison's interval and MDE are at the level Holm tests it at (marked
    when it is not 95%); with fewer than `MIN_SEEDS` seeds per cell there is no test."""
    out = []
    for c in results.cells:
        s = c.summary
        if c.is_baseline:
            delta, p, mde, test, verdict = "baseline", "", "", "", ""
        elif c.comparison is None:
            delta, p, mde, test, verdict = "no baseline runs", "", "", "", ""
        elif c.comparison.too_few:
            k = c.comparison
            delta, p, mde, test = f"{k.diff:+.2f} (no test)", "–", "–", "none"
            verdict = f"n too small (need {k.needed})"
        else:
            k = c.comparison
            delta = f"{k.diff:+.2f} [{fmt(k.ci_low)}, {fmt(k.ci_high)}]{_level(k.alpha)}"
            p, mde, test, verdict = (
                _p(k.p_holm if not math.isnan(k.p_holm) else k.p_value),
                fmt(k.mde),
                k.test,
                k.verdict,
            )
        extra = [f"+{len(c.diverged)} diverged"] if c.diverged else []
        extra += [f"{len(c.stalled)} stalled"] if c.stalled else []
        n = str(s.n) + (f" ({', '.join(extra)})" if extra else "")
        ci = f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]" if s.n >= MIN_SEEDS else "–"  # 1 degree of freedom: no use
        out.append(
            [
                c.label,
                n,
                f"{fmt(s.mean)} ± {fmt(s.std)}",
                ci,
                delta,
                p,
                mde,
                test,
                verdict,
                f"{c.seconds_per_epoch.mean:.3g}" if c.seconds_per_epoch.n else "–",
            ]
        )
    return out


def verdict_sentence(results: StudyResults) -> str:
    """A plain-language summary of every comparison (p-values Holm-corrected over the study's comparisons)."""
    metric = results.metric.replace("_", " ")
    parts = []
    for c in results.cells:
        if c.comparison is None or c.comparison.too_few:
            continue
        k = c.comparison
        ci = f"{100 * (1 - k.alpha):.4g}% CI {fmt(k.ci_low)} to {fmt(k.ci_high)}, Holm p={k.p_holm:.3g}, n={k.n}"
        if k.verdict in ("better", "worse"):
            parts.append(f"{c.label} is {k.verdict} than {c.baseline_label}: {metric} {k.diff:+.2f} points ({ci}).")
        elif k.verdict == "no significant difference":
            parts.append(
                f"{c.label} vs {c.baseline_label}: no significant difference in {metric} ({k.diff:+.2f} points, {ci})."
            )
        else:
            parts.append(f"{c.label} vs {c.baseline_label}: {k.verdict}.")
    few = too_few_sentence(results)
    return " ".join(parts + ([few] if few else [])) or "No comparison with a baseline is available yet."


def too_few_sentence(results: StudyResults) -> str:
    """The line shown instead of tests when a cell has fewer than `MIN_SEEDS` seeds: n is too small, and the n
    needed."""
    few: list[Comparison] = [c.comparison for c in results.cells if c.comparison is not None and c.comparison.too_few]
    if not few:
        return ""
    n = min(k.n for k in few)
    needed = max(k.needed or MIN_SEEDS for k in few)
    more = (
        (
            f"; with the spread these runs show, about {needed} seeds per cell would detect differences of the "
            "observed size"
        )
        if needed > MIN_SEEDS
        else ""
    )
    return (
        f"n = {n} seed(s) per cell is too small to compare: no test was run. A comparison needs at least "
        f"{MIN_SEEDS} seeds per cell (rerun with --seeds {MIN_SEEDS} or more{more})."
    )


def power_sentence(results: StudyResults) -> str:
    """The minimum detectable effect of each comparison: what a "no significant difference" can rule out."""
    tested = [(c.label, c.comparison) for c in results.cells if c.comparison is not None and not c.comparison.too_few]
    parts = [f"{label} {fmt(k.mde)}{_alpha_note(k.alpha)}" for label, k in tested if math.isfinite(k.mde)]
    if not parts:
        return ""
    n = min(k.n for _, k in tested)
    return (
        f"Minimum detectable effect (80% power at the level each comparison is tested at after Holm's "
        f"correction, from the observed seed-to-seed spread, n={n}): {', '.join(parts)} points of "
        f"{results.metric.replace('_', ' ')}; smaller true differences can go undetected."
    )


def _alpha_note(alpha: float) -> str:
    return f" (alpha {alpha:.3g})" if abs(alpha - ALPHA) > 1e-12 else ""


def runs_sentences(results: StudyResults) -> list[str]:
    """Sentences on runs that are not ordinary results: unconverged, diverged, failed or unfinished, and files
    set aside (checkpoints that did not match the database)."""
    out = []
    unconverged = [f"{c.label} seeds {', '.join(map(str, c.unconverged))}" for c in results.cells if c.unconverged]
    # runs whose plateau can be judged: done, not stalled, with a logged training loss
    done = sum(has_train_loss(r) for c in results.cells for r in c.runs if r not in c.stalled)
    if unconverged:
        out.append(
            f"Not converged (the last {PLATEAU_WINDOW:.0%} of epochs brought more than {PLATEAU_TOL:.0%} of "
            f"the training loss's fall): {'; '.join(unconverged)}. Train longer before trusting final values."
        )
    elif done:
        out.append(
            f"All {done} finished runs that did not stall reached a plateau (the last {PLATEAU_WINDOW:.0%} "
            f"of epochs brought at most {PLATEAU_TOL:.0%} of the training loss's fall)."
        )
    stalled = [f"{c.label} seeds {', '.join(str(r['seed']) for r in c.stalled)}" for c in results.cells if c.stalled]
    if stalled:
        out.append(
            f"Stalled (training loss within {STALL_TOL:.0%} of chance, ln C, at every epoch; counted with "
            f"their chance-level values): {'; '.join(stalled)}."
        )
    for r in results.diverged:
        info = r.get("extras", {}).get("diverged", {})
        out.append(
            f"Diverged: {_cell_label(r)}, seed {r['seed']} (loss {info.get('loss', 'NaN')} in epoch "
            f"{info.get('epoch', '?')}, step {info.get('step', '?')})."
        )
    for r in results.failed:
        first = (r.get("error") or "no error recorded").splitlines()[0]
        out.append(f"Failed: {_cell_label(r)}, seed {r['seed']}: {first}")
    other = [r for r in results.incomplete if r["status"] != "failed"]
    if other:
        statuses = ", ".join(sorted({r["status"] for r in other}))
        out.append(f"{len(other)} run(s) not finished ({statuses}); re-run the same command to finish them.")
    for item in results.set_aside:
        out.append(
            f"Set aside (kept, not used; the run was trained again from its last consistent state): "
            f"{item['path']}: {item['reason']}."
        )
    return out


def _cell_label(run: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in run["cell"].items()) or "run"
