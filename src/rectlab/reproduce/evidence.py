"""Evidence for claims: per-seed values out of study results, and the verdict rules that judge them.

The rules are deliberately plain (one comparison, one test, alpha = 0.05, no multiplicity correction,
which the reports state):

* :func:`direction_check` — "A is lower (or higher) than B": **reproduced** when the difference has the
  claimed sign with p < 0.05; **not reproduced** when it has the opposite sign with p < 0.05, or when
  an equivalence ``margin`` is given and the whole 95% CI lies inside ``±margin`` (no effect of the
  size that would matter); otherwise **inconclusive**, saying that the CI includes 0 with n seeds.
* :func:`equivalence_check` — "A is comparable to B": **reproduced** when the 95% CI of the
  difference lies inside ``±margin``; **not reproduced** when it lies entirely outside; otherwise
  **inconclusive**.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..report.stats import Comparison, compare, summarize
from .core import ClaimCheck

__all__ = [
    "auc",
    "at_epoch",
    "cells_where",
    "compare_values",
    "direction_check",
    "equivalence_check",
    "find_cell",
    "final",
    "fmt_ci",
    "metric_curves",
    "missing_check",
    "no_improvement_check",
    "per_seed",
    "site_curves",
    "site_finals",
    "site_mean",
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


def per_seed(cell: Any, value: RunValue) -> dict[int, float]:
    """``{seed: value(run)}`` for the done runs of ``cell`` (runs where ``value`` is NaN are left out)."""
    if cell is None:
        return {}
    out = {}
    for run in cell.runs:
        v = value(run)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            out[int(run["seed"])] = float(v)
    return out


def final(metric: str) -> RunValue:
    """The metric at the last epoch."""
    return lambda run: _get(run["epochs"][-1], metric) if run["epochs"] else math.nan


def at_epoch(metric: str, epoch: int) -> RunValue:
    """The metric at ``epoch`` (1-based; NaN when the run is shorter)."""
    return lambda run: _get(run["epochs"][epoch - 1], metric) if len(run["epochs"]) >= epoch else math.nan


def auc(metric: str) -> RunValue:
    """The metric averaged over all epochs: the area under its curve per epoch (lower = learned faster)."""
    return lambda run: float(np.nanmean([_get(e, metric) for e in run["epochs"]])) if run["epochs"] else math.nan


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


def site_curves(cell: Any, prefix: str) -> dict[str, np.ndarray]:
    """``{site: (seeds, epochs) array}`` of the per-site metric ``prefix/<site>`` (see :mod:`rectlab.probes`)."""
    from ..probes import per_site_curves

    if cell is None or not cell.runs:
        return {}
    n = min(len(r["epochs"]) for r in cell.runs)
    per_run = [per_site_curves(r["epochs"][:n], prefix) for r in cell.runs]
    sites = list(dict.fromkeys(s for pr in per_run for s in pr))
    return {s: np.array([pr.get(s, [math.nan] * n) for pr in per_run], dtype=float) for s in sites}


def site_finals(cell: Any, prefix: str) -> dict[str, list[float]]:
    """``{site: [final value per seed]}`` of a per-site metric."""
    return {s: list(arr[:, -1]) for s, arr in site_curves(cell, prefix).items() if arr.size}


def _get(row: Mapping[str, Any], metric: str) -> float:
    v = row.get(metric)
    return math.nan if v is None else float(v)


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


def compare_values(base: Mapping[int, float], other: Mapping[int, float]) -> Comparison:
    """``other - base`` with its 95% CI and p (paired by seed when the seeds match; Welch otherwise)."""
    return compare(base, other)


def _evidence(k: Comparison, what: str, unit: str, digits: int) -> str:
    p = "p not computable" if math.isnan(k.p_value) else f"p={k.p_value:.3g}"
    return f"{what} {k.diff:+.{digits}f}{unit} ({fmt_ci(k.ci_low, k.ci_high, digits)}, {k.test}, {p}, n={k.n})"


def direction_check(claim: str, base: Mapping[int, float], other: Mapping[int, float], *, expect: str = "lower",
                    what: str = "difference", unit: str = "", margin: float | None = None, digits: int = 2,
                    primary: bool = True, alpha: float = 0.05) -> ClaimCheck:
    """Judge "``other`` is {expect} than ``base``" by the rule in the module docstring.

    Args:
        claim: the claim in words.
        base, other: ``{seed: value}`` per group.
        expect: "lower" or "higher".
        what: how the difference is named in the reason (e.g. "PReLU − ReLU test error").
        unit: unit suffix (e.g. " points").
        margin: an equivalence margin: a CI inside ``±margin`` counts as "no effect" (not reproduced).
    """
    if expect not in ("lower", "higher"):
        raise ValueError(f"expect must be 'lower' or 'higher', got {expect!r}")
    if len(base) < 2 or len(other) < 2:
        n = min(len(base), len(other))
        return ClaimCheck(claim, "inconclusive", f"needs at least 2 seeds per group, got {n}", primary)
    k = compare_values(base, other)
    evidence = _evidence(k, what, unit, digits)
    good = k.diff < 0 if expect == "lower" else k.diff > 0
    if not math.isnan(k.p_value) and k.p_value < alpha:
        if good:
            return ClaimCheck(claim, "reproduced", f"{evidence}: {expect} as claimed, p < {alpha}", primary)
        return ClaimCheck(claim, "not reproduced", f"{evidence}: significantly the opposite way", primary)
    if margin is not None and not math.isnan(k.ci_low) and -margin < k.ci_low and k.ci_high < margin:
        return ClaimCheck(claim, "not reproduced",
                          f"{evidence}: the CI excludes any effect larger than ±{margin:g}{unit}", primary)
    return ClaimCheck(claim, "inconclusive",
                      f"{evidence}: the 95% CI includes 0; with {k.n} seeds the seed-to-seed spread is too large to "
                      "tell the sign",
                      primary)


def equivalence_check(claim: str, base: Mapping[int, float], other: Mapping[int, float], *, margin: float,
                      what: str = "difference", unit: str = "", digits: int = 2, primary: bool = True) -> ClaimCheck:
    """Judge "``other`` is comparable to ``base`` (within ±margin)" by its 95% CI (two one-sided tests at 2.5%)."""
    if len(base) < 2 or len(other) < 2:
        n = min(len(base), len(other))
        return ClaimCheck(claim, "inconclusive", f"needs at least 2 seeds per group, got {n}", primary)
    k = compare_values(base, other)
    evidence = _evidence(k, what, unit, digits)
    if math.isnan(k.ci_low):
        return ClaimCheck(claim, "inconclusive", f"{evidence}: no confidence interval", primary)
    if -margin < k.ci_low and k.ci_high < margin:
        return ClaimCheck(claim, "reproduced", f"{evidence}: the CI lies inside ±{margin:g}{unit}", primary)
    if k.ci_low >= margin or k.ci_high <= -margin:
        return ClaimCheck(claim, "not reproduced", f"{evidence}: the CI lies outside ±{margin:g}{unit}", primary)
    return ClaimCheck(claim, "inconclusive",
                      f"{evidence}: the CI is wider than ±{margin:g}{unit}, so neither equivalence nor a "
                      "difference is shown", primary)


def no_improvement_check(claim: str, base: Mapping[int, float], other: Mapping[int, float], *, margin: float,
                         what: str = "difference", unit: str = "", digits: int = 2,
                         primary: bool = True) -> ClaimCheck:
    """Judge "``other`` does not improve on ``base``" for a lower-is-better metric.

    **reproduced** when the 95% CI of ``other - base`` lies above ``-margin`` (no improvement as large
    as the margin); **not reproduced** when ``other`` is significantly lower (p < 0.05); otherwise
    **inconclusive**.
    """
    if len(base) < 2 or len(other) < 2:
        n = min(len(base), len(other))
        return ClaimCheck(claim, "inconclusive", f"needs at least 2 seeds per group, got {n}", primary)
    k = compare_values(base, other)
    evidence = _evidence(k, what, unit, digits)
    if not math.isnan(k.p_value) and k.p_value < 0.05 and k.diff < 0:
        return ClaimCheck(claim, "not reproduced", f"{evidence}: a significant improvement", primary)
    if not math.isnan(k.ci_low) and k.ci_low > -margin:
        return ClaimCheck(claim, "reproduced",
                          f"{evidence}: the CI rules out an improvement larger than {margin:g}{unit}", primary)
    return ClaimCheck(claim, "inconclusive",
                      f"{evidence}: the CI allows an improvement larger than {margin:g}{unit}", primary)


def missing_check(claim: str, why: str, primary: bool = True) -> ClaimCheck:
    """An inconclusive check for a claim this scale does not test (e.g. deeper models only run at full)."""
    return ClaimCheck(claim, "inconclusive", why, primary)
