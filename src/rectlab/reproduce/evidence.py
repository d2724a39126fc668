"""Evidence for claims: per-seed values out of study results, the convergence gate, and the verdict rules.

A claim check compares two samples of per-seed values (``other − base``) with
`rectlab.report.stats.compare` and judges the difference with `rectlab.report.stats.judge`:

* `direction_check` — "A is lower (or higher) than B": **reproduced** when the difference has the
  claimed sign and is significant after Holm's correction over the study's primary checks; **not
  reproduced** when it is significantly the opposite, or when the 95% CI excludes every effect as large
  as the claim's equivalence ``margin`` in the claimed direction; otherwise **inconclusive**, saying
  what n would decide it.
* `equivalence_check` — "A is comparable to B (within ±margin)": two one-sided tests.
* `no_improvement_check` — "A does not improve on B by as much as the margin".

**Convergence gate.** Final-accuracy claims are judged only on runs whose training loss reached a
plateau (`converged`); otherwise the check is inconclusive with the reason "not converged".
Learning-speed claims use explicit measures instead (`auc`, `steps_to`) and no gate.

**Diverged runs are outcomes.** A run whose loss became NaN/Inf is stored with status "diverged";
`sample` counts it, names it in the reason, and, when the check says what a diverged run is
worth (e.g. chance-level error, or "never reached the threshold"), includes it with that value.

Checks are built with the uncorrected p; `finalize` applies Holm's correction to the primary
checks of a study and re-judges them (the runner does this before writing the report).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..report.collect import PLATEAU_TOL, PLATEAU_WINDOW, converged, site_curves  # site_curves re-exported
from ..report.stats import Comparison, compare, holm, judge, seeds_for, summarize, tost_p, wilson
from .core import ClaimCheck

__all__ = [
    "PLATEAU_TOL",
    "PLATEAU_WINDOW",
    "Sample",
    "at_epoch",
    "auc",
    "cells_where",
    "converged",
    "estimate_check",
    "direction_check",
    "equivalence_check",
    "final",
    "finalize",
    "find_cell",
    "fmt_ci",
    "judged",
    "metric_curves",
    "missing_check",
    "no_improvement_check",
    "per_seed",
    "proportion_check",
    "sample",
    "site_curves",
    "site_finals",
    "site_mean",
    "steps_per_epoch",
    "steps_to",
    "summary_text",
]

RunValue = Callable[[Mapping[str, Any]], float]



# -- picking cells and values ----------------------------------------------------------------------------

def _matches(values: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(k in values and values[k] == v for k, v in wanted.items())


def find_cell(results: Any, **values: Any) -> Any:
    """The cell whose grid values include ``values`` (None when absent or ambiguous)."""
    found = cells_where(results, **values)
    return found[0] if len(found) == 1 else None


def cells_where(results: Any, **values: Any) -> list[Any]:
    """All cells whose grid values include ``values``, in grid order."""
    return [c for c in getattr(results, "cells", []) if _matches(c.values, values)]


def _valid(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def per_seed(cell: Any, value: RunValue) -> dict[int, float]:
    """``{seed: value(run)}`` for the done runs of ``cell`` (runs where ``value`` is NaN are left out)."""
    if cell is None:
        return {}
    return {int(run["seed"]): float(value(run)) for run in cell.runs if _valid(value(run))}


def final(metric: str) -> RunValue:
    """The metric at the last epoch."""
    return lambda run: _get(run["epochs"][-1], metric) if run["epochs"] else math.nan


def at_epoch(metric: str, epoch: int) -> RunValue:
    """The metric at ``epoch`` (1-based; NaN when the run is shorter)."""
    return lambda run: _get(run["epochs"][epoch - 1], metric) if len(run["epochs"]) >= epoch else math.nan


def auc(metric: str) -> RunValue:
    """Learning speed: the metric averaged over all epochs, the area under its curve per epoch (lower = faster)."""
    return lambda run: float(np.nanmean([_get(e, metric) for e in run["epochs"]])) if run["epochs"] else math.nan


def steps_per_epoch(run: Mapping[str, Any]) -> int | None:
    """Optimizer steps per epoch of a run that trained on ``train_limit`` examples (None when unknown)."""
    config = run.get("config", {})
    limit, batch = config.get("train_limit"), config.get("batch_size")
    return max(1, limit // batch) if limit and batch else None


def steps_to(metric: str, threshold: float) -> RunValue:
    """Learning speed: optimizer steps until ``metric`` is at or below ``threshold`` at an epoch end.

    A run that never gets there is censored at its budget plus one epoch (a lower bound of its time),
    so that it still counts, as the slowest; tied censored values make the comparison use an exact
    permutation test. Steps are epochs x steps per epoch (the spec sets ``train_limit``); without it
    the unit is epochs.
    """

    def value(run: Mapping[str, Any]) -> float:
        epochs = run["epochs"]
        per = steps_per_epoch(run) or 1
        for i, row in enumerate(epochs):
            v = _get(row, metric)
            if v <= threshold:
                return float((i + 1) * per)
        budget = run.get("config", {}).get("epochs", len(epochs))
        return float((budget + 1) * per)

    return value


def site_mean(prefix: str, transform: Callable[[float], float] = lambda v: v, epoch: int = -1) -> RunValue:
    """The mean over activation sites of ``transform(prefix/<site>)`` at one epoch (default: the last)."""

    def value(run: Mapping[str, Any]) -> float:
        if not run["epochs"]:
            return math.nan
        row = run["epochs"][epoch]
        vals = [transform(float(v)) for k, v in row.items() if k.startswith(prefix + "/") and v is not None]
        return float(np.mean(vals)) if vals else math.nan

    return value


def metric_curves(cell: Any, metric: str) -> np.ndarray:
    """``(seeds, epochs)`` array of one metric over training (truncated to the shortest run)."""
    if cell is None or not cell.runs:
        return np.empty((0, 0))
    n = min(len(r["epochs"]) for r in cell.runs)
    return np.array([[_get(e, metric) for e in r["epochs"][:n]] for r in cell.runs], dtype=float)


def site_finals(cell: Any, prefix: str) -> dict[str, list[float]]:
    """``{site: [final value per seed]}`` of a per-site metric."""
    return {s: list(arr[:, -1]) for s, arr in site_curves(cell, prefix).items() if arr.size}


def _get(row: Mapping[str, Any], metric: str) -> float:
    v = row.get(metric)
    return math.nan if v is None else float(v)


# -- convergence and samples -------------------------------------------------------------------------------

@dataclass
class Sample:
    """Per-seed values of one group of runs, with the runs that did not give an ordinary value.

    Attributes:
        values: ``{seed: value}`` (diverged runs included when the check gave them a value).
        label: the group's name in reasons.
        diverged: ``{seed: where}`` of the runs that diverged (loss NaN/Inf), e.g. "epoch 2, step 311".
        unconverged: seeds of done runs whose training loss had not reached a plateau.
        diverged_value: the value given to diverged runs, or None when they are left out.
    """

    values: dict[int, float] = field(default_factory=dict)
    label: str = ""
    diverged: dict[int, str] = field(default_factory=dict)
    unconverged: list[int] = field(default_factory=list)
    diverged_value: float | None = None

    def __len__(self) -> int:
        return len(self.values)


def sample(cell: Any, value: RunValue, *, label: str = "", diverged: float | None = None) -> Sample:
    """The per-seed values of ``cell`` with its diverged and unconverged runs.

    Args:
        cell: a [`rectlab.report.CellResult`][rectlab.report.CellResult] (None gives an empty sample).
        value: what to take from each run (`final`, `auc`, `steps_to`, ...).
        label: the group's name in reasons (default: the cell's label).
        diverged: the (finite) value a diverged run counts as, e.g. chance-level error, or the budget plus one
            epoch for "never reached a threshold"; ``None`` leaves diverged runs out of the values (they are
            still named in the reason).
    """
    if cell is None:
        return Sample(label=label)
    out = Sample(per_seed(cell, value), label or cell.label, diverged_value=diverged)
    for run in getattr(cell, "diverged", []):
        info = run.get("extras", {}).get("diverged", {})
        out.diverged[int(run["seed"])] = f"epoch {info.get('epoch', '?')}, step {info.get('step', '?')}"
        if diverged is not None:
            out.values[int(run["seed"])] = float(diverged)
    out.unconverged = [int(r["seed"]) for r in cell.runs if not converged(r)]
    return out


def _as_sample(x: Sample | Mapping[int, float]) -> Sample:
    return x if isinstance(x, Sample) else Sample(dict(x))


# -- statistics in words ---------------------------------------------------------------------------------

def fmt_ci(lo: float, hi: float, digits: int = 2) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return "no CI"
    return f"95% CI {lo:.{digits}f} to {hi:.{digits}f}"


def summary_text(values: Sequence[float], digits: int = 2) -> str:
    """``mean ± std (95% CI a–b, n=k)`` of one cell's per-seed values."""
    s = summarize(values)
    if s.n == 0:
        return "no runs"
    if s.n == 1:
        return f"{s.mean:.{digits}f} (n=1)"
    return f"{s.mean:.{digits}f} ± {s.std:.{digits}f} (95% CI {s.ci_low:.{digits}f}–{s.ci_high:.{digits}f}, n={s.n})"


def _p_text(p: float) -> str:
    return "p not computable" if math.isnan(p) else f"p={p:.3g}"


def _evidence(k: Comparison, what: str, unit: str, digits: int) -> str:
    ci = fmt_ci(k.ci_low, k.ci_high, digits)
    return f"{what} {k.diff:+.{digits}f}{unit} ({ci}, {k.test}, {_p_text(k.p_value)}, n={k.n})"


def _run_notes(groups: Sequence[Sample]) -> tuple[str, str]:
    """(notes about diverged runs, the reason a final-value claim is blocked by unconverged runs)."""
    notes, unconverged = [], []
    for g in groups:
        if g.diverged:
            where = "; ".join(f"seed {s}: {w}" for s, w in sorted(g.diverged.items()))
            worth = f"counted as {g.diverged_value:g}" if g.diverged_value is not None else "left out of the test"
            notes.append(f"{len(g.diverged)} {g.label} run(s) diverged ({where}), {worth}")
        if g.unconverged:
            unconverged.append(f"{g.label} seeds {', '.join(map(str, g.unconverged))}")
    blocked = ("not converged: the training loss of " + "; ".join(unconverged) + " had not reached a plateau "
               f"(its last {PLATEAU_WINDOW:.0%} of epochs brought more than {PLATEAU_TOL:.0%} of its fall), so the "
               "final values are not yet the models' final accuracy") if unconverged else ""
    return "; ".join(notes), blocked


def _check(claim: str, base: Sample | Mapping[int, float], other: Sample | Mapping[int, float], *, expect: str,
           margin: float | None, what: str, unit: str, digits: int, primary: bool, gate: bool) -> ClaimCheck:
    b, o = _as_sample(base), _as_sample(other)
    notes, blocked = _run_notes([b, o])
    if not gate:
        blocked = ""
    finite_b = {s: v for s, v in b.values.items() if math.isfinite(v)}
    finite_o = {s: v for s, v in o.values.items() if math.isfinite(v)}
    if len(finite_b) < 2 or len(finite_o) < 2:
        n = min(len(finite_b), len(finite_o))
        reason = f"needs at least 2 runs per group with a value, got {n}" + (f"; {notes}" if notes else "")
        return ClaimCheck(claim, "inconclusive", reason, primary, n=n, margin=margin, expect=expect, notes=notes,
                          blocked=f"too few runs ({n})", unit=unit, digits=digits)
    k = compare(finite_b, finite_o)
    p = k.p_value
    if expect == "equivalent":  # the p of "the difference lies within ±margin": two one-sided tests
        if margin is None:
            raise ValueError(f"{claim}: an equivalence claim needs a margin")
        p = tost_p(k.diff, k.sd, k.n, margin) if k.paired else tost_p(
            k.diff, k.sd, len(finite_o), margin, n2=len(finite_b))
        k = dataclasses.replace(k, p_value=p, test=f"two one-sided tests against ±{margin:g} ({k.test})")
    check = ClaimCheck(claim, "inconclusive", "", primary, n=k.n, estimate=k.diff, ci=(k.ci_low, k.ci_high), p=p,
                       mde=k.mde, margin=margin, expect=expect, evidence=_evidence(k, what, unit, digits),
                       notes=notes, blocked=blocked, sd=k.sd, paired=k.paired, unit=unit, digits=digits)
    return judged(check)


def judged(check: ClaimCheck, p_holm: float | None = None) -> ClaimCheck:
    """``check`` with its verdict and reason by `rectlab.report.stats.judge`, from its uncorrected p or,
    when given, its Holm-corrected ``p_holm``. A blocked check stays inconclusive."""
    p_used = check.p if p_holm is None else p_holm
    verdict, why = judge(check.estimate, check.ci, p_used, expect=check.expect, margin=check.margin)
    if check.blocked:
        verdict, why = "inconclusive", check.blocked
    unit, digits = check.unit, check.digits
    power = f"MDE {check.mde:.{digits}f}{unit}" if math.isfinite(check.mde) else "MDE: none (too few runs)"
    margin = f", margin {check.margin:g}{unit}" if check.margin is not None else ""
    corrected = f", Holm p={p_holm:.3g}" if p_holm is not None and not math.isnan(p_holm) else ""
    parts = [f"{check.evidence}{corrected}; {power}{margin}: {why}"]
    if verdict == "inconclusive" and not check.blocked and check.margin is not None:
        needed = seeds_for(check.margin, check.sd, paired=check.paired)
        if needed is not None and needed > check.n:
            parts.append(f"about {needed} seeds per group would detect an effect of the margin's size")
    if check.notes:
        parts.append(check.notes)
    return dataclasses.replace(check, verdict=verdict, reason="; ".join(parts),
                               p_holm=math.nan if p_holm is None else p_holm)


def direction_check(claim: str, base: Sample | Mapping[int, float], other: Sample | Mapping[int, float], *,
                    expect: str = "lower", margin: float | None = None, what: str = "difference", unit: str = "",
                    digits: int = 2, primary: bool = True, gate: bool = False) -> ClaimCheck:
    """Judge "``other`` is {expect} than ``base``" by the rule in the module docstring.

    Args:
        claim: the claim in words.
        base, other: per-seed values (a `Sample` or ``{seed: value}``).
        expect: "lower" or "higher".
        margin: the equivalence margin (the smallest effect that matters, from the paper's effect): a CI
            that excludes effects this large in the claimed direction makes the claim "not reproduced".
        what, unit, digits: how the difference is named and printed in the reason.
        primary: whether the check decides the study's verdict (and joins the Holm family).
        gate: apply the convergence gate (final-accuracy claims): unconverged runs make it inconclusive.
    """
    if expect not in ("lower", "higher"):
        raise ValueError(f"expect must be 'lower' or 'higher', got {expect!r}")
    return _check(claim, base, other, expect=expect, margin=margin, what=what, unit=unit, digits=digits,
                  primary=primary, gate=gate)


def equivalence_check(claim: str, base: Sample | Mapping[int, float], other: Sample | Mapping[int, float], *,
                      margin: float, what: str = "difference", unit: str = "", digits: int = 2,
                      primary: bool = True, gate: bool = False) -> ClaimCheck:
    """Judge "``other`` is comparable to ``base`` (within ±margin)" by two one-sided tests (TOST)."""
    return _check(claim, base, other, expect="equivalent", margin=margin, what=what, unit=unit, digits=digits,
                  primary=primary, gate=gate)


def no_improvement_check(claim: str, base: Sample | Mapping[int, float], other: Sample | Mapping[int, float], *,
                         margin: float, what: str = "difference", unit: str = "", digits: int = 2,
                         primary: bool = True, gate: bool = False) -> ClaimCheck:
    """Judge "``other`` does not improve on ``base``" for a lower-is-better metric.

    **not reproduced** when ``other − base`` is significantly below 0; **reproduced** when its 95% CI
    excludes an improvement as large as ``margin``; otherwise **inconclusive**.
    """
    return _check(claim, base, other, expect="not-lower", margin=margin, what=what, unit=unit, digits=digits,
                  primary=primary, gate=gate)


def estimate_check(claim: str, estimate: float, ci: tuple[float, float], p: float, n: int, *, expect: str,
                   margin: float | None, what: str, test: str, mde: float, unit: str = "", digits: int = 2,
                   primary: bool = True, notes: str = "") -> ClaimCheck:
    """A check from an estimate computed elsewhere (e.g. a bootstrap), judged by the same rule as the others.

    Args:
        estimate, ci, p: the effect, its 95% interval and the two-sided p of "no effect".
        n: the units behind it (e.g. seeds per group); mde: its minimum detectable effect.
        expect, margin, what, unit, digits, primary: as `direction_check`; test: the method's name.
    """
    evidence = f"{what} {estimate:+.{digits}f}{unit} ({fmt_ci(ci[0], ci[1], digits)}, {test}, {_p_text(p)}, n={n})"
    check = ClaimCheck(claim, "inconclusive", "", primary, n=n, estimate=estimate, ci=ci, p=p, mde=mde,
                       margin=margin, expect=expect, evidence=evidence, notes=notes, unit=unit, digits=digits)
    return judged(check)


def proportion_check(claim: str, successes: int, n: int, *, expect: str = "most", what: str = "runs",
                     notes: str = "", primary: bool = True) -> ClaimCheck:
    """Judge a claim about how often something happens (e.g. "He init converges": the runs that converged).

    Rule, from the Wilson 95% interval of the rate ``successes / n``: for ``expect="most"``, **reproduced**
    when the interval lies above 1/2, **not reproduced** when it lies below 1/2; ``expect="few"`` swaps them
    (e.g. "Xavier init stalls": few runs converge); otherwise **inconclusive**. With 8 runs, 7 or 8
    successes are "most" and 0 or 1 are "few".
    """
    if expect not in ("most", "few"):
        raise ValueError(f"expect must be 'most' or 'few', got {expect!r}")
    if n == 0:
        return ClaimCheck(claim, "inconclusive", f"no {what}", primary, notes=notes, blocked="no runs")
    lo, hi = wilson(successes, n)
    above, below = lo > 0.5, hi < 0.5
    if expect == "most":
        verdict = "reproduced" if above else "not reproduced" if below else "inconclusive"
    else:
        verdict = "reproduced" if below else "not reproduced" if above else "inconclusive"
    evidence = f"{successes} of {n} {what} (rate {successes / n:.0%}, Wilson 95% CI {lo:.0%} to {hi:.0%})"
    rule = ("the CI lies above 1/2" if above else "the CI lies below 1/2" if below else "the CI includes 1/2")
    reason = f"{evidence}: {rule}" + (f"; {notes}" if notes else "")
    return ClaimCheck(claim, verdict, reason, primary, n=n, estimate=successes / n, ci=(lo, hi), evidence=evidence,
                      notes=notes, digits=2)


def missing_check(claim: str, why: str, primary: bool = True) -> ClaimCheck:
    """An inconclusive check for a claim this scale does not test (e.g. deeper models only run at full)."""
    return ClaimCheck(claim, "inconclusive", why, primary)


# -- the family of a study's primary claims ----------------------------------------------------------------

def finalize(checks: Sequence[ClaimCheck]) -> list[ClaimCheck]:
    """Apply Holm's correction over the primary checks that have a p-value, and re-judge them.

    Secondary checks keep their uncorrected p (``p_holm`` NaN). Checks with a rule of their own
    (``expect == ""``) keep their verdict; their p still counts in the family.
    """
    family = [i for i, c in enumerate(checks) if c.primary and not math.isnan(c.p)]
    out = list(checks)
    for i, p_holm in zip(family, holm([checks[i].p for i in family])):
        if checks[i].expect:
            out[i] = judged(checks[i], p_holm)
        else:
            out[i] = dataclasses.replace(checks[i], p_holm=p_holm)
    return out
