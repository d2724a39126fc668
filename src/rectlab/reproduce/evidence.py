"""Evidence for claims: per-seed values out of study results, the convergence gate, and the verdict rules.

A claim check holds its data (an `Evidence`: per-seed values of two groups, a count of successes, a
bootstrap, ...) and the kind of claim, and is labelled by `rectlab.report.stats.judge` with one of five
labels: reproduced, weaker than claimed, not reproduced, contradicted, inconclusive.

* `direction_check`: "A is lower (or higher) than B" by at least the claim's margin.
* `equivalence_check`: "A is comparable to B (within ±margin)": two one-sided tests.
* `no_improvement_check`: "A does not improve on B by as much as the margin" (and `no_worse_check`, its
  mirror).
* `rate_check`: "most runs stall", "always recovers": a rate against a threshold and a claimed level.
* `estimate_check`: an estimate computed elsewhere (e.g. a seed bootstrap), judged by the same rule.

Checks are built at the study's alpha; `finalize` then applies Holm's correction over the study's
primary checks and re-evaluates each one at the level Holm tests it at (its interval and MDE too, so that
the interval shown is the one the label used), and measures each label's **stability**: the share of 1,000
seed-bootstrap resamples of its data that give the same label (the runner does this before writing the
report).

**Convergence gate.** Final-accuracy claims are judged only on runs whose training loss reached a
plateau (`converged`) and on cells whose recorded budget check passed (the metric at twice the epochs
moved by at most half the margin); otherwise the check is inconclusive with the reason "not converged".
Learning-speed claims use explicit measures instead (`auc`, `steps_to`) and no gate.

**Diverged and stalled runs are outcomes.** A run whose loss became NaN/Inf is stored with status
"diverged"; a finished run whose training loss stayed at chance level at every epoch is "stalled" (see
`rectlab.report.collect.stalled`). `sample` counts both and names them in the reason; a stalled
run enters with its own (chance-level) values, a diverged one with the value the check gives it (e.g.
chance-level error, or "never reached the threshold"), or not at all.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..report.collect import PLATEAU_TOL, PLATEAU_WINDOW, converged, site_curves, stalled  # site_curves re-exported
from ..report.stats import (
    ALPHA,
    MIN_SEEDS,
    bootstrap_draws,
    bootstrap_interval,
    compare,
    holm,
    holm_levels,
    judge,
    mde_from_ci,
    one_sided_p,
    rate_mde,
    rate_p,
    rate_seeds_for,
    seeds_for,
    summarize,
    tost_p,
    wilson,
)
from .core import ClaimCheck

__all__ = [
    "ONE_SIDED",
    "PLATEAU_TOL",
    "PLATEAU_WINDOW",
    "RESAMPLES",
    "Bootstrapped",
    "Diff",
    "Estimate",
    "Evidence",
    "Rate",
    "Sample",
    "at_epoch",
    "auc",
    "cells_where",
    "converged",
    "direction_check",
    "equivalence_check",
    "estimate_check",
    "final",
    "finalize",
    "find_cell",
    "fmt_ci",
    "judged",
    "metric_curves",
    "missing_check",
    "no_improvement_check",
    "no_worse_check",
    "per_seed",
    "rate_check",
    "sample",
    "site_curves",
    "site_finals",
    "site_mean",
    "stability",
    "steps_per_epoch",
    "steps_to",
    "summary_text",
]

RESAMPLES = 1000  # seed-bootstrap resamples behind each check's stability
ONE_SIDED = ("equivalent", "not-lower", "not-higher")  # claims tested one-sided: their interval is 1 - 2 alpha

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
        values: ``{seed: value}`` (stalled runs with their own values; diverged runs included when the check
            gave them a value).
        label: the group's name in reasons.
        diverged: ``{seed: where}`` of the runs that diverged (loss NaN/Inf), e.g. "epoch 2, step 311".
        stalled: seeds of done runs whose training loss never left chance level.
        unconverged: seeds of done runs, not stalled, whose training loss had not reached a plateau.
        diverged_value: the value given to diverged runs, or None when they are left out.
        planned: the seeds the spec planned for the group (0 when unknown).
        budget: why the cell's recorded budget check failed ("" when it passed or none is recorded).
    """

    values: dict[int, float] = field(default_factory=dict)
    label: str = ""
    diverged: dict[int, str] = field(default_factory=dict)
    stalled: list[int] = field(default_factory=list)
    unconverged: list[int] = field(default_factory=list)
    diverged_value: float | None = None
    planned: int = 0
    budget: str = ""

    def __len__(self) -> int:
        return len(self.values)


def sample(cell: Any, value: RunValue, *, label: str = "", diverged: float | None = None) -> Sample:
    """The per-seed values of ``cell`` with its diverged, stalled and unconverged runs.

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
    out = Sample(
        per_seed(cell, value),
        label or cell.label,
        diverged_value=diverged,
        planned=int(getattr(cell, "planned", 0) or 0),
    )
    for run in getattr(cell, "diverged", []):
        info = run.get("extras", {}).get("diverged", {})
        out.diverged[int(run["seed"])] = f"epoch {info.get('epoch', '?')}, step {info.get('step', '?')}"
        if diverged is not None:
            out.values[int(run["seed"])] = float(diverged)
    out.stalled = [int(r["seed"]) for r in cell.runs if stalled(r)]
    out.unconverged = [int(r["seed"]) for r in cell.runs if not converged(r) and not stalled(r)]
    budget = getattr(cell, "budget", None)
    if budget and not budget.get("passed", True):
        out.budget = (
            f"{out.label}: at twice the epochs the {budget.get('metric', 'metric')} moved by "
            f"{budget.get('shift', math.nan):+.3g} (more than the tolerance {budget.get('tolerance', 0):g})"
        )
    return out


def _as_sample(x: Sample | Mapping[int, float]) -> Sample:
    return x if isinstance(x, Sample) else Sample(dict(x))


# -- evidence: the data behind a check, at any level, and its resamples ---------------------------------------


@dataclass(frozen=True)
class Estimate:
    """An estimate with its interval at a level, the claim's p-value and the MDE at that level."""

    value: float
    ci: tuple[float, float]
    p: float
    mde: float
    n: int
    sd: float = math.nan
    paired: bool = True
    test: str = ""


class Evidence(Protocol):
    """The data a check is computed from.

    ``estimate(level, kind, margin)`` gives the estimate, its interval at ``1 - level``, the p-value of the
    claim's test (two-sided for "lower"/"higher", one-sided or TOST for the other kinds) and the MDE at
    ``level``; ``resample(rng)`` draws a seed-bootstrap resample of the same data (seeds, runs or trials with
    replacement) for the label's stability.
    """

    def estimate(self, level: float, kind: str, margin: float | None, *, power: bool = True) -> Estimate: ...

    def resample(self, rng: np.random.Generator) -> Evidence: ...


@dataclass(frozen=True)
class Diff:
    """``other − base`` of per-seed values: paired by seed when both ran the same seeds, else two groups.

    ``method`` fixes the test family for resamples ("t" or "exact"; None: chosen by the data, see
    `rectlab.report.stats.compare`).
    """

    base: Mapping[int, float]
    other: Mapping[int, float]
    method: str | None = None

    def estimate(self, level: float, kind: str, margin: float | None, *, power: bool = True) -> Estimate:
        k = compare(self.base, self.other, alpha=level, method=self.method, power=power)
        if k.too_few:
            return Estimate(k.diff, (math.nan, math.nan), math.nan, math.inf, k.n, test="none")
        p = k.p_value
        if kind in ONE_SIDED and margin is not None:
            n, n2 = (k.n, None) if k.paired else (len(self.other), len(self.base))
            if kind == "equivalent":
                p = tost_p(k.diff, k.sd, n, margin, n2=n2)
            else:
                bound, side = (-margin, "above") if kind == "not-lower" else (margin, "below")
                p = one_sided_p(k.diff, k.sd, n, bound, side, n2=n2)
        return Estimate(k.diff, (k.ci_low, k.ci_high), p, k.mde, k.n, k.sd, k.paired, k.test)

    def resample(self, rng: np.random.Generator) -> Diff:
        # Resamples repeat seeds, so their values always tie: they use the t interval (inverting the exact tests
        # 1,000 times would cost minutes); a resample without spread still gets the exact test.
        method = "t"
        if set(self.base) == set(self.other):
            seeds = sorted(self.base)
            pick = [seeds[i] for i in rng.integers(0, len(seeds), len(seeds))]
            return Diff(
                {i: self.base[s] for i, s in enumerate(pick)}, {i: self.other[s] for i, s in enumerate(pick)}, method
            )
        b, o = list(self.base.values()), list(self.other.values())
        rb, ro = rng.integers(0, len(b), len(b)), rng.integers(0, len(o), len(o))
        return Diff({i: b[j] for i, j in enumerate(rb)}, {len(b) + i: o[j] for i, j in enumerate(ro)}, method)


@dataclass(frozen=True)
class Rate:
    """``successes`` of ``n`` (runs, trials) against a threshold ``null``: Wilson interval and score test."""

    successes: float
    n: int
    null: float

    def estimate(self, level: float, kind: str, margin: float | None, *, power: bool = True) -> Estimate:
        if self.n == 0:
            return Estimate(math.nan, (math.nan, math.nan), math.nan, math.inf, 0, test="none")
        return Estimate(
            self.successes / self.n,
            wilson(self.successes, self.n, alpha=level),
            rate_p(self.successes, self.n, self.null),
            rate_mde(self.null, self.n, alpha=level) if power else math.nan,
            self.n,
            test="Wilson score",
        )

    def resample(self, rng: np.random.Generator) -> Rate:
        return Rate(float(rng.binomial(self.n, self.successes / self.n)) if self.n else 0.0, self.n, self.null)


@dataclass(frozen=True)
class Bootstrapped:
    """A statistic of resampled units (e.g. seeds whose models enter a mean over all pairs together).

    ``groups`` are independent groups of unit indices; ``statistic(*index_arrays)`` computes the estimate
    from them. The interval is the percentile bootstrap at ``1 - level`` and the MDE the one it implies
    (`rectlab.report.stats.mde_from_ci`); the bootstrap draws are made once and reused at every level. A
    resample for stability (``origin`` set) draws the units again and shifts the original's interval to its own
    estimate, instead of running a bootstrap inside each resample.
    """

    groups: tuple[tuple[int, ...], ...]
    statistic: Callable[..., float]
    n_resamples: int = 4000
    origin: Bootstrapped | None = None

    def estimate(self, level: float, kind: str, margin: float | None, *, power: bool = True) -> Estimate:
        n = min(len(g) for g in self.groups)
        if self.origin is not None:  # a resample: the original interval's shape around this estimate
            value = float(self.statistic(*(np.asarray(g) for g in self.groups)))
            b = bootstrap_interval(*_draws(self.origin), 1 - level)
            return Estimate(
                value,
                (value - (b.estimate - b.low), value + (b.high - b.estimate)),
                math.nan,
                math.nan,
                n,
                test="shifted",
            )
        b = bootstrap_interval(*_draws(self), 1 - level)
        mde = mde_from_ci(b.low, b.high, alpha=level, confidence=1 - level) if power else math.nan
        return Estimate(b.estimate, (b.low, b.high), b.p, mde, n, test="seed bootstrap")

    def resample(self, rng: np.random.Generator) -> Bootstrapped:
        groups = tuple(tuple(int(g[i]) for i in rng.integers(0, len(g), len(g))) for g in self.groups)
        return Bootstrapped(groups, self.statistic, self.n_resamples, self.origin or self)


_DRAWS: dict[int, tuple[Bootstrapped, tuple[float, np.ndarray]]] = {}


def _draws(source: Bootstrapped) -> tuple[float, np.ndarray]:
    """The estimate and bootstrap draws of ``source``, made once per object."""
    hit = _DRAWS.get(id(source))
    if hit is None or hit[0] is not source:
        if len(_DRAWS) > 32:
            _DRAWS.clear()
        hit = _DRAWS[id(source)] = (
            source,
            bootstrap_draws([np.asarray(g) for g in source.groups], source.statistic, n_resamples=source.n_resamples),
        )
    return hit[1]


# -- statistics in words ---------------------------------------------------------------------------------


def fmt_ci(lo: float, hi: float, digits: int = 2, alpha: float = ALPHA) -> str:
    """``95% CI a to b`` (the level from ``alpha``), or "no CI"."""
    if math.isnan(lo) or math.isnan(hi):
        return "no CI"
    return f"{100 * (1 - alpha):.4g}% CI {lo:.{digits}f} to {hi:.{digits}f}"


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


def _run_notes(groups: Sequence[Sample]) -> tuple[str, str]:
    """(notes about diverged and stalled runs, the reason a final-value claim is blocked by unconverged runs or a
    failed budget check)."""
    notes, unconverged, budget = [], [], []
    for g in groups:
        if g.diverged:
            where = "; ".join(f"seed {s}: {w}" for s, w in sorted(g.diverged.items()))
            worth = f"counted as {g.diverged_value:g}" if g.diverged_value is not None else "left out of the test"
            notes.append(f"{len(g.diverged)} {g.label} run(s) diverged ({where}), {worth}")
        if g.stalled:
            notes.append(
                f"{len(g.stalled)} {g.label} run(s) stalled at chance level (seeds "
                f"{', '.join(map(str, g.stalled))}), counted with their final values"
            )
        if g.unconverged:
            unconverged.append(f"{g.label} seeds {', '.join(map(str, g.unconverged))}")
        if g.budget:
            budget.append(g.budget)
    blocked = []
    if unconverged:
        blocked.append(
            "not converged: the training loss of " + "; ".join(unconverged) + " had not reached a plateau "
            f"(its last {PLATEAU_WINDOW:.0%} of epochs brought more than {PLATEAU_TOL:.0%} of its fall), so "
            "the final values are not yet the models' final accuracy"
        )
    if budget:
        blocked.append("not converged within the budget (budget check): " + "; ".join(budget))
    return "; ".join(notes), "; ".join(blocked)


def _make(
    claim: str,
    source: Evidence | None,
    *,
    expect: str,
    margin: float | None,
    what: str,
    unit: str,
    digits: int,
    primary: bool,
    notes: str = "",
    blocked: str = "",
    null: float = 0.0,
    n_planned: int | None = None,
) -> ClaimCheck:
    check = ClaimCheck(
        claim,
        "inconclusive",
        "",
        primary,
        margin=margin,
        expect=expect,
        null=null,
        notes=notes,
        blocked=blocked,
        unit=unit,
        digits=digits,
        what=what,
        n_planned=n_planned or None,
        source=source,
    )
    return judged(check)


def judged(check: ClaimCheck, level: float | None = None, p_holm: float | None = None) -> ClaimCheck:
    """``check`` evaluated at ``level`` (default: its current alpha) and labelled by
    `rectlab.report.stats.judge`; ``p_holm`` is shown when given. A blocked check stays inconclusive.

    Checks without a ``source`` (a rule of their own) keep their label and only record ``p_holm``.
    """
    level = check.alpha if level is None else level
    if check.source is None:
        return dataclasses.replace(check, p_holm=math.nan if p_holm is None else p_holm, alpha=level)
    ci_level = 2 * level if check.expect in ONE_SIDED else level
    est = check.source.estimate(ci_level, check.expect, check.margin)
    verdict, why = judge(est.value, est.ci, expect=check.expect, margin=check.margin, null=check.null)
    unit, digits = check.unit, check.digits
    if est.test == "none":
        evidence = f"{check.what} {est.value:+.{digits}f}{unit} (no test: n={est.n}, fewer than {MIN_SEEDS} per group)"
        why = f"n = {est.n} is too small to compare (a test needs at least {MIN_SEEDS} per group)"
    else:
        shown = f"{est.value:.{digits}f}" if _is_rate(check) else f"{est.value:+.{digits}f}"
        evidence = (
            f"{check.what} {shown}{unit} ({fmt_ci(est.ci[0], est.ci[1], digits, ci_level)}, {est.test}, "
            f"{_p_text(est.p)}, n={est.n})"
        )
    if check.blocked:
        verdict, why = "inconclusive", check.blocked
    corrected = f", Holm p={p_holm:.3g}" if p_holm is not None and not math.isnan(p_holm) else ""
    power = f"MDE {est.mde:.{digits}f}{unit}" if math.isfinite(est.mde) else "MDE: none (too few runs)"
    at = f" at alpha {level:.3g}" if abs(level - ALPHA) > 1e-12 else ""
    margin = ""
    if check.margin is not None:
        sign = 1 if check.expect == "higher" else -1
        margin = (
            f", threshold {check.null:g}, claimed level {check.null + sign * check.margin:g}"
            if _is_rate(check)
            else f", margin {check.margin:g}{unit}"
        )
    parts = [f"{evidence}{corrected}; {power}{at}{margin}: {why}"]
    needed = None
    if verdict == "inconclusive" and not check.blocked:
        needed = _needed(check, est, ci_level)
        if needed is not None and needed > est.n and est.test != "none":
            parts.append(f"about {needed} {'runs' if _is_rate(check) else 'per group'} would decide it")
    if check.notes:
        parts.append(check.notes)
    return dataclasses.replace(
        check,
        verdict=verdict,
        reason="; ".join(parts),
        n=est.n,
        estimate=est.value,
        ci=est.ci,
        p=est.p,
        p_holm=math.nan if p_holm is None else p_holm,
        mde=est.mde,
        sd=est.sd,
        paired=est.paired,
        alpha=level,
        evidence=evidence,
        needed=needed,
    )


def _is_rate(check: ClaimCheck) -> bool:
    """A claim about a rate against a threshold (its estimate is a rate, not a difference)."""
    return isinstance(check.source, Rate) or (check.null != 0 and check.expect in ("lower", "higher"))


def _needed(check: ClaimCheck, est: Estimate, level: float) -> int | None:
    """The n per group that would decide an inconclusive check (None when unknown)."""
    if est.test == "none":
        return MIN_SEEDS
    if _is_rate(check):
        if check.margin is None:
            return rate_seeds_for(est.value, check.null, None, alpha=level)
        level_value = check.null + check.margin if check.expect == "higher" else check.null - check.margin
        return rate_seeds_for(est.value, check.null, level_value, alpha=level)
    if check.margin is None or not math.isfinite(est.sd):
        return None
    return seeds_for(check.margin, est.sd, paired=est.paired, alpha=level)


def direction_check(
    claim: str,
    base: Sample | Mapping[int, float],
    other: Sample | Mapping[int, float],
    *,
    expect: str = "lower",
    margin: float | None = None,
    what: str = "difference",
    unit: str = "",
    digits: int = 2,
    primary: bool = True,
    gate: bool = False,
) -> ClaimCheck:
    """Judge "``other`` is {expect} than ``base``" by the five-label rule (`rectlab.report.stats.judge`).

    Args:
        claim: the claim in words.
        base, other: per-seed values (a `Sample` or ``{seed: value}``).
        expect: "lower" or "higher".
        margin: the smallest effect that counts as the paper's (from the paper's effect, declared in the spec).
        what, unit, digits: how the difference is named and printed in the reason.
        primary: whether the check decides the study's verdict (and joins the Holm family).
        gate: apply the convergence gate (final-accuracy claims): unconverged runs, or a failed budget check,
            make it inconclusive.
    """
    if expect not in ("lower", "higher"):
        raise ValueError(f"expect must be 'lower' or 'higher', got {expect!r}")
    return _pair_check(
        claim,
        base,
        other,
        expect=expect,
        margin=margin,
        what=what,
        unit=unit,
        digits=digits,
        primary=primary,
        gate=gate,
    )


def _pair_check(
    claim: str,
    base: Sample | Mapping[int, float],
    other: Sample | Mapping[int, float],
    *,
    expect: str,
    margin: float | None,
    what: str,
    unit: str,
    digits: int,
    primary: bool,
    gate: bool,
) -> ClaimCheck:
    b, o = _as_sample(base), _as_sample(other)
    notes, blocked = _run_notes([b, o])
    finite_b = {s: v for s, v in b.values.items() if math.isfinite(v)}
    finite_o = {s: v for s, v in o.values.items() if math.isfinite(v)}
    planned = min(b.planned, o.planned) if b.planned and o.planned else None
    return _make(
        claim,
        Diff(finite_b, finite_o),
        expect=expect,
        margin=margin,
        what=what,
        unit=unit,
        digits=digits,
        primary=primary,
        notes=notes,
        blocked=blocked if gate else "",
        n_planned=planned,
    )


def equivalence_check(
    claim: str,
    base: Sample | Mapping[int, float],
    other: Sample | Mapping[int, float],
    *,
    margin: float,
    what: str = "difference",
    unit: str = "",
    digits: int = 2,
    primary: bool = True,
    gate: bool = False,
) -> ClaimCheck:
    """Judge "``other`` is comparable to ``base`` (within ±margin)" by two one-sided tests (TOST): reproduced when
    the ``1 - 2 alpha`` interval lies inside ±margin, contradicted when it lies outside."""
    return _pair_check(
        claim,
        base,
        other,
        expect="equivalent",
        margin=margin,
        what=what,
        unit=unit,
        digits=digits,
        primary=primary,
        gate=gate,
    )


def no_improvement_check(
    claim: str,
    base: Sample | Mapping[int, float],
    other: Sample | Mapping[int, float],
    *,
    margin: float,
    what: str = "difference",
    unit: str = "",
    digits: int = 2,
    primary: bool = True,
    gate: bool = False,
) -> ClaimCheck:
    """Judge "``other`` does not improve on ``base`` by as much as ``margin``" (lower is better): reproduced when
    the ``1 - 2 alpha`` interval of ``other − base`` lies above ``-margin``, contradicted when below it."""
    return _pair_check(
        claim,
        base,
        other,
        expect="not-lower",
        margin=margin,
        what=what,
        unit=unit,
        digits=digits,
        primary=primary,
        gate=gate,
    )


def no_worse_check(
    claim: str,
    base: Sample | Mapping[int, float],
    other: Sample | Mapping[int, float],
    *,
    margin: float,
    what: str = "difference",
    unit: str = "",
    digits: int = 2,
    primary: bool = True,
    gate: bool = False,
) -> ClaimCheck:
    """Judge "``other`` is not worse than ``base`` by more than ``margin``" (lower is better): reproduced when the
    ``1 - 2 alpha`` interval of ``other − base`` lies below ``margin``, contradicted when above it."""
    return _pair_check(
        claim,
        base,
        other,
        expect="not-higher",
        margin=margin,
        what=what,
        unit=unit,
        digits=digits,
        primary=primary,
        gate=gate,
    )


def estimate_check(
    claim: str,
    source: Evidence,
    *,
    expect: str,
    margin: float | None,
    what: str,
    unit: str = "",
    digits: int = 2,
    primary: bool = True,
    notes: str = "",
    n_planned: int | None = None,
    null: float = 0.0,
) -> ClaimCheck:
    """A check on any `Evidence` (e.g. `Bootstrapped`), judged by the same rule as the others.

    Args:
        source: the data (re-evaluated at Holm's level and resampled for stability).
        expect, margin, what, unit, digits, primary: as `direction_check`.
        notes: shown with the reason; n_planned: the n the spec planned.
        null: what "no effect" is (0 for a difference; the threshold of a rate claim).
    """
    return _make(
        claim,
        source,
        expect=expect,
        margin=margin,
        what=what,
        unit=unit,
        digits=digits,
        primary=primary,
        notes=notes,
        n_planned=n_planned,
        null=null,
    )


def rate_check(
    claim: str,
    successes: int,
    n: int,
    *,
    threshold: float,
    level: float | None = None,
    expect: str = "higher",
    what: str = "runs",
    notes: str = "",
    primary: bool = True,
    n_planned: int | None = None,
) -> ClaimCheck:
    """Judge a claim about how often something happens, against a threshold declared before running.

    The rate ``successes / n`` with its Wilson interval is judged as a directional claim with ``null`` =
    ``threshold`` and the claimed size ``level`` (e.g. "most runs stall": threshold 0.5; "always":
    level 0.9): **reproduced** when the interval lies on the claimed side of the threshold and reaches the
    level; **weaker than claimed** when it lies on that side but short of the level; **not reproduced** when it
    includes the threshold and falls short of the level; **contradicted** when it lies on the other side of
    the threshold; **inconclusive** otherwise. ``expect="lower"`` ("few runs converge") mirrors it.

    Args:
        claim: the claim in words.
        successes, n: how often it happened, out of how many runs (diverged runs included as the claim
            says).
        threshold: the rate the claim must exceed ("most": 0.5), or stay below with ``expect="lower"``.
        level: the rate the paper claims (e.g. 0.9 for "always"); None: no claimed size.
        what: what ``successes`` counts, for the reason.
        notes, primary, n_planned: as the other checks.
    """
    if expect not in ("higher", "lower"):
        raise ValueError(f"expect must be 'higher' or 'lower', got {expect!r}")
    if level is not None and (level <= threshold if expect == "higher" else level >= threshold):
        raise ValueError(f"the claimed level {level} must lie beyond the threshold {threshold} on the claimed side")
    margin = None if level is None else abs(level - threshold)
    return _make(
        claim,
        Rate(float(successes), n, threshold),
        expect=expect,
        margin=margin,
        what=f"rate of {what}",
        unit="",
        digits=2,
        primary=primary,
        notes=notes,
        null=threshold,
        n_planned=n_planned,
    )


def missing_check(claim: str, why: str, primary: bool = True) -> ClaimCheck:
    """An inconclusive check for a claim this scale does not test (e.g. deeper models only run at full)."""
    return ClaimCheck(claim, "inconclusive", why, primary)


# -- the family of a study's primary claims ----------------------------------------------------------------


def stability(check: ClaimCheck, resamples: int = RESAMPLES, seed: int = 0) -> float | None:
    """The share of ``resamples`` seed-bootstrap resamples of the check's data that give its label, at the level
    the label used (None for checks without data, or blocked ones)."""
    if check.source is None or check.blocked or not (math.isfinite(check.ci[0]) and math.isfinite(check.ci[1])):
        return None  # no interval (too few runs, or an exact test that cannot reach the level): nothing to resample
    rng = np.random.default_rng(seed)
    ci_level = 2 * check.alpha if check.expect in ONE_SIDED else check.alpha
    same = 0
    for _ in range(resamples):
        est = check.source.resample(rng).estimate(ci_level, check.expect, check.margin, power=False)
        label, _ = judge(est.value, est.ci, expect=check.expect, margin=check.margin, null=check.null)
        same += label == check.verdict
    return same / resamples


def finalize(checks: Sequence[ClaimCheck], alpha: float = ALPHA, *, resamples: int = RESAMPLES) -> list[ClaimCheck]:
    """Apply Holm's correction over the primary checks that have a p-value, re-evaluate every check at its level,
    and measure each label's stability.

    A primary check is evaluated at the level Holm tests it at (`rectlab.report.stats.holm_levels`): its
    interval, MDE and label use that level (one-sided kinds: their ``1 - 2 level`` interval). Secondary checks
    use ``alpha``. Checks with a rule of their own (no ``source``) keep their verdict; their p still counts in
    the family.

    Args:
        checks: the study's checks.
        alpha: the family-wise error rate (the stage's alpha in a two-stage design).
        resamples: seed-bootstrap resamples per check for ``stability`` (0 skips it).
    """
    out = [judged(c, alpha) if c.source is not None else c for c in checks]
    family = [i for i, c in enumerate(out) if c.primary and not math.isnan(c.p)]
    pvalues = [out[i].p for i in family]
    for i, p_holm, level in zip(family, holm(pvalues), holm_levels(pvalues, alpha)):
        out[i] = judged(out[i], level, p_holm)
    if resamples:
        out = [dataclasses.replace(c, stability=stability(c, resamples)) for c in out]
    return out
