"""Statistics for a study: per-cell summaries and differences to the baseline, with a plain verdict.

The EraseReLU paper was criticized for reporting single numbers; rectlab always reports n, the mean,
the standard deviation, a 95% confidence interval (Student t) and, against the baseline, the
difference with its 95% CI and a p-value: a paired t-test when both cells ran the same seeds
(the seed fixes init and data order, so pairing removes that shared variance), Welch's t-test otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = ["Summary", "Comparison", "summarize", "compare", "ALPHA"]

ALPHA = 0.05


@dataclass(frozen=True)
class Summary:
    """n, mean, sample std and the 95% t confidence interval of the mean (NaN bounds when n < 2)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


@dataclass(frozen=True)
class Comparison:
    """``cell - baseline`` of a lower-is-better metric.

    Attributes:
        diff: mean difference (negative: the cell is better).
        ci_low, ci_high: its 95% confidence interval.
        p_value: two-sided p-value (NaN when it cannot be computed).
        test: "paired t" or "Welch t" (or a reason when there is no test).
        n: pairs (paired) or the smaller group size.
        verdict: "better", "worse", "no significant difference" or "inconclusive (...)".
    """

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    n: int
    verdict: str


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Summarize one cell's values (one per seed)."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def _verdict(diff: float, p: float, alpha: float) -> str:
    if math.isnan(p):
        return "inconclusive (no test possible)"
    if p < alpha:
        return "better" if diff < 0 else "worse"
    return "no significant difference"


def compare(baseline: Mapping[int, float], other: Mapping[int, float], alpha: float = ALPHA) -> Comparison:
    """Compare two cells given ``{seed: value}`` for each (lower values are better).

    Paired by seed when both ran exactly the same seeds (at least 2), Welch otherwise.
    """
    b = {k: v for k, v in baseline.items() if v is not None}
    o = {k: v for k, v in other.items() if v is not None}
    if len(b) < 2 or len(o) < 2:
        d = (np.mean(list(o.values())) - np.mean(list(b.values()))) if b and o else math.nan
        return Comparison(float(d), math.nan, math.nan, math.nan, "none", min(len(b), len(o)),
                          "inconclusive (need >= 2 seeds per cell)")
    if set(b) == set(o):
        seeds = sorted(b)
        d = np.array([o[s] - b[s] for s in seeds])
        n = len(d)
        mean, sd = float(d.mean()), float(d.std(ddof=1))
        if sd == 0:
            p = 1.0 if mean == 0 else 0.0
            return Comparison(mean, mean, mean, p, "paired t (zero variance)", n, _verdict(mean, p, alpha))
        half = float(sps.t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
        p = float(sps.ttest_rel(list(o[s] for s in seeds), list(b[s] for s in seeds)).pvalue)
        return Comparison(mean, mean - half, mean + half, p, "paired t", n, _verdict(mean, p, alpha))
    xb, xo = np.array(list(b.values())), np.array(list(o.values()))
    mean = float(xo.mean() - xb.mean())
    vb, vo = xb.var(ddof=1) / len(xb), xo.var(ddof=1) / len(xo)
    se = math.sqrt(vb + vo)
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
        return Comparison(mean, mean, mean, p, "Welch t (zero variance)", min(len(xb), len(xo)),
                          _verdict(mean, p, alpha))
    dof = (vb + vo) ** 2 / (vb**2 / (len(xb) - 1) + vo**2 / (len(xo) - 1))
    half = float(sps.t.ppf(1 - alpha / 2, dof)) * se
    p = float(sps.ttest_ind(xo, xb, equal_var=False).pvalue)
    return Comparison(mean, mean - half, mean + half, p, "Welch t", min(len(xb), len(xo)), _verdict(mean, p, alpha))
