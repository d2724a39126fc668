"""Statistics for studies and reproductions: summaries, comparisons, power, multiplicity and verdict rules.

The EraseReLU paper was criticized for reporting single numbers; rectlab always reports n, the mean,
the standard deviation, a 95% confidence interval (Student t) and, against the baseline, the
difference with its 95% CI and a p-value:

* paired by seed when both cells ran the same seeds (the seed fixes init and data order, so pairing
  removes that shared variance): a paired t-test, or an exact sign-flip permutation test when the
  differences are tied or constant (discrete metrics such as counts of dead units), so that zero
  variance never gives p = 0;
* otherwise Welch's t-test, or a permutation test of the difference in means when values tie.

Every comparison also reports its **minimum detectable effect** (MDE): the smallest true difference
the test would detect with 80% power at alpha = 0.05, given the observed spread and n (from the
noncentral t distribution). `holm` corrects a family of p-values, `judge` applies the
verdict rule of a claim with an equivalence margin, and `bootstrap_ci` gives percentile
intervals where no closed form fits (e.g. the prediction difference averaged over all pairs of seeds).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy import special  # the t, noncentral t and normal distributions; scipy.stats costs 1-2 s more to import


def _t_ppf(q: float, df: float) -> float:
    return float(special.stdtrit(df, q))


def _t_cdf(x: float, df: float) -> float:
    return float(special.stdtr(df, x))


def _t_sf(x: float, df: float) -> float:
    return float(special.stdtr(df, -x))


def _t_two_sided_p(t: float, df: float) -> float:
    return 2.0 * _t_sf(abs(t), df)


def _norm_ppf(q: float) -> float:
    return float(special.ndtri(q))


def _bisect(f: Callable[[float], float], low: float, high: float, xtol: float) -> float:
    """The root of an increasing ``f`` with ``f(low) < 0 <= f(high)``."""
    while high - low > xtol:
        mid = (low + high) / 2
        low, high = (mid, high) if f(mid) < 0 else (low, mid)
    return (low + high) / 2

__all__ = [
    "ALPHA",
    "POWER",
    "Bootstrap",
    "Comparison",
    "Summary",
    "bootstrap_ci",
    "compare",
    "holm",
    "holm_comparisons",
    "judge",
    "mde",
    "mde_from_ci",
    "permutation_test",
    "seeds_for",
    "sign_flip_test",
    "summarize",
    "tost_p",
    "wilson",
]

ALPHA = 0.05
POWER = 0.8
EXACT_LIMIT = 20_000  # enumerate every permutation up to this many; Monte Carlo (seeded) beyond
MONTE_CARLO = 20_000


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
        p_value: two-sided p-value (NaN when it cannot be computed; never 0).
        test: "paired t", "sign-flip (ties)", "Welch t" or "permutation (ties)" (or why there is no test).
        n: pairs (paired) or the smaller group size.
        verdict: "better", "worse", "no significant difference" or "inconclusive (...)".
        mde: minimum detectable effect (80% power, two-sided alpha 0.05) from the observed spread.
        sd: the spread behind the test (sd of the paired differences; for Welch the pooled sd).
        paired: whether the test paired the groups by seed.
        p_holm: ``p_value`` after Holm's correction over the study's comparisons (NaN until corrected).
    """

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    n: int
    verdict: str
    mde: float = math.nan
    sd: float = math.nan
    paired: bool = True
    p_holm: float = math.nan


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
    half = _t_ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


# -- exact tests -------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _signs(n: int, seed: int) -> np.ndarray:
    """All ``2**n`` sign patterns (exact) or a fixed seeded sample of them, as an (m, n) matrix."""
    if 2**n <= EXACT_LIMIT:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    return np.random.default_rng(seed).choice((1.0, -1.0), size=(MONTE_CARLO, n))


@functools.lru_cache(maxsize=64)
def _splits(n: int, k: int, seed: int) -> np.ndarray:
    """Index sets of size k out of n: all of them (exact) or a fixed seeded sample, as an (m, k) matrix."""
    if math.comb(n, k) <= EXACT_LIMIT:
        return np.array(list(itertools.combinations(range(n), k)))
    rng = np.random.default_rng(seed)
    return np.array([rng.permutation(n)[:k] for _ in range(MONTE_CARLO)])


def _p_from(null: np.ndarray, observed: float, exact: bool, scale: float) -> float:
    hits = int(np.sum(null >= observed - 1e-12 * max(1.0, scale)))
    return hits / len(null) if exact else (1 + hits) / (1 + len(null))


def sign_flip_test(diffs: Sequence[float] | np.ndarray, *, seed: int = 0) -> float:
    """Two-sided p-value of "the paired differences are centred on 0" by flipping their signs.

    Exact (all ``2**n`` sign patterns) up to `EXACT_LIMIT` patterns, else a seeded Monte Carlo
    estimate ``(1 + hits) / (1 + draws)``. The smallest possible p is ``2 / 2**n`` (n = 5: 0.0625),
    so constant differences give an honest p instead of 0.
    """
    d = np.asarray(diffs, dtype=float)
    if len(d) == 0:
        return math.nan
    null = np.abs(_signs(len(d), seed) @ d) / len(d)
    return _p_from(null, abs(d.mean()), 2 ** len(d) <= EXACT_LIMIT, float(np.abs(d).max()))


def permutation_test(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *, seed: int = 0) -> float:
    """Two-sided p-value of "x and y have the same mean" by permuting the group labels.

    Exact when the number of splits is at most `EXACT_LIMIT`, else seeded Monte Carlo.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    pooled = np.concatenate([a, b])
    n, k = len(pooled), len(a)
    if k == 0 or k == n:
        return math.nan
    sums = pooled[_splits(n, k, seed)].sum(1)
    null = np.abs(sums / k - (pooled.sum() - sums) / (n - k))
    return _p_from(null, abs(a.mean() - b.mean()), math.comb(n, k) <= EXACT_LIMIT, float(np.abs(pooled).max()))


def _invert(p_at: Callable[[float], float], estimate: float, far_low: float, far_high: float, floor: float,
            alpha: float) -> tuple[float, float]:
    """The confidence interval ``{delta: p_at(delta) >= alpha}`` of a permutation test, by bisection on each side.

    Unbounded when even the most extreme data cannot reach ``alpha`` (``floor`` = the smallest possible p).
    """
    if floor >= alpha:
        return -math.inf, math.inf
    bounds = []
    for far in (far_low, far_high):
        rejected, accepted = far, estimate
        for _ in range(60):
            mid = (rejected + accepted) / 2
            if p_at(mid) >= alpha:
                accepted = mid
            else:
                rejected = mid
        bounds.append(accepted)
    return bounds[0], bounds[1]


def _min_p_paired(n: int) -> float:
    return 2.0 * 0.5 ** min(n, 1000) if n > 0 else 1.0


def _min_p_unpaired(n1: int, n2: int) -> float:
    return 2.0 / math.comb(min(n1 + n2, 1000), min(n1, 500)) if n1 and n2 else 1.0


# -- power -------------------------------------------------------------------------------------------------

def _power(effect: float, se: float, df: float, alpha: float) -> float:
    crit = _t_ppf(1 - alpha / 2, df)
    nc = effect / se
    power = float(1.0 - special.nctdtr(df, nc, crit) + special.nctdtr(df, nc, -crit))
    if math.isnan(power):  # scipy's noncentral t fails in parts of the tail (df = 1, nc = 15): integrate instead
        # T = (Z + nc) / S with S = sqrt(chi2_df / df): P(|T| > crit) = E_S[Phi(nc - crit S) + Phi(-nc - crit S)]
        u = (np.arange(4000) + 0.5) / 4000
        scale = np.sqrt(special.chdtri(df, 1 - u) / df)
        power = float(np.mean(special.ndtr(nc - crit * scale) + special.ndtr(-nc - crit * scale)))
    return power


def mde(sd: float, n: int, *, n2: int | None = None, sd2: float | None = None, alpha: float = ALPHA,
        power: float = POWER) -> float:
    """Minimum detectable effect of a two-sided t-test at ``power`` (noncentral t).

    Args:
        sd: sd of the paired differences (paired: ``n2`` omitted) or of the first group (Welch).
        n: pairs, or the first group's size.
        n2, sd2: the second group's size and sd (Welch's test); ``sd2`` defaults to ``sd``.
        alpha, power: test level and target power.

    Returns:
        The effect (in the metric's units); ``inf`` when n is too small for any test, ``0.0`` when the
        spread is zero and an exact test can still reach ``alpha``.
    """
    if n2 is None:
        if n < 2 or not math.isfinite(sd):
            return math.inf
        if sd == 0:
            return 0.0 if _min_p_paired(n) < alpha else math.inf
        se, df = sd / math.sqrt(n), float(n - 1)
    else:
        sd2 = sd if sd2 is None else sd2
        if n < 2 or n2 < 2 or not (math.isfinite(sd) and math.isfinite(sd2)):
            return math.inf
        v1, v2 = sd**2 / n, sd2**2 / n2
        if v1 + v2 == 0:
            return 0.0 if _min_p_unpaired(n, n2) < alpha else math.inf
        se = math.sqrt(v1 + v2)
        df = (v1 + v2) ** 2 / (v1**2 / (n - 1) + v2**2 / (n2 - 1))
    hi = se
    while _power(hi, se, df, alpha) < power:
        hi *= 2
    return _bisect(lambda e: _power(e, se, df, alpha) - power, 0.0, hi, xtol=1e-10 * hi)


def seeds_for(effect: float, sd: float, *, paired: bool = True, alpha: float = ALPHA, power: float = POWER,
              limit: int = 10_000) -> int | None:
    """The smallest n (pairs, or seeds per group for Welch with equal sds) that detects ``effect`` at ``power``.

    Returns ``None`` when the spread is unknown or more than ``limit`` seeds would be needed.
    """
    if not (math.isfinite(sd) and math.isfinite(effect)) or effect <= 0:
        return None
    if sd == 0:  # no spread: the exact tests need p < alpha, i.e. enough seeds for the smallest possible p
        return next((n for n in range(2, 64) if (_min_p_paired(n) if paired else _min_p_unpaired(n, n)) < alpha),
                    None)

    def mde_at(n: int) -> float:
        return mde(sd, n, alpha=alpha, power=power) if paired else mde(sd, n, n2=n, alpha=alpha, power=power)

    if mde_at(limit) > effect:
        return None
    lo, hi = 2, limit
    while lo < hi:
        mid = (lo + hi) // 2
        if mde_at(mid) <= effect:
            hi = mid
        else:
            lo = mid + 1
    return lo


# -- comparisons -------------------------------------------------------------------------------------------

def _verdict(diff: float, p: float, alpha: float) -> str:
    if math.isnan(p):
        return "inconclusive (no test possible)"
    if p < alpha:
        return "better" if diff < 0 else "worse"
    return "no significant difference"


def _tied(values: np.ndarray) -> bool:
    return len(np.unique(values)) < len(values)


def compare(baseline: Mapping[int, float], other: Mapping[int, float], alpha: float = ALPHA) -> Comparison:
    """Compare two cells given ``{seed: value}`` for each (lower values are better).

    Paired by seed when both ran exactly the same seeds (at least 2), Welch otherwise; tied or
    constant values switch to the exact permutation tests (see the module docstring).
    """
    b = {k: v for k, v in baseline.items() if v is not None and not math.isnan(v)}
    o = {k: v for k, v in other.items() if v is not None and not math.isnan(v)}
    if len(b) < 2 or len(o) < 2:
        d = (np.mean(list(o.values())) - np.mean(list(b.values()))) if b and o else math.nan
        return Comparison(float(d), math.nan, math.nan, math.nan, "none", min(len(b), len(o)),
                          "inconclusive (need >= 2 seeds per cell)", math.inf)
    if set(b) == set(o):
        seeds = sorted(b)
        d = np.array([o[s] - b[s] for s in seeds])
        n = len(d)
        mean, sd = float(d.mean()), float(d.std(ddof=1))
        if sd == 0 or _tied(d):  # discrete values: the exact test, and the interval that inverts it
            p, test = sign_flip_test(d), "sign-flip (ties)"
            span = float(d.max() - d.min()) + 1.0
            lo, hi = _invert(lambda delta: sign_flip_test(d - delta), mean, float(d.min()) - span,
                             float(d.max()) + span, _min_p_paired(n), alpha)
        else:
            p = _t_two_sided_p(mean / (sd / math.sqrt(n)), n - 1)
            test = "paired t"
            half = _t_ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
            lo, hi = mean - half, mean + half
        return Comparison(mean, lo, hi, p, test, n, _verdict(mean, p, alpha), mde(sd, n, alpha=alpha), sd, True)
    xb, xo = np.array(list(b.values())), np.array(list(o.values()))
    mean = float(xo.mean() - xb.mean())
    sb, so = float(xb.std(ddof=1)), float(xo.std(ddof=1))
    vb, vo = sb**2 / len(xb), so**2 / len(xo)
    se = math.sqrt(vb + vo)
    n = min(len(xb), len(xo))
    pooled = math.sqrt((sb**2 + so**2) / 2)
    effect_mde = mde(so, len(xo), n2=len(xb), sd2=sb, alpha=alpha)
    if se == 0 or _tied(np.concatenate([xb, xo])):
        p = permutation_test(xo, xb)
        span = float(max(xo.max(), xb.max()) - min(xo.min(), xb.min())) + 1.0
        lo, hi = _invert(lambda delta: permutation_test(xo - delta, xb), mean, mean - 2 * span, mean + 2 * span,
                         _min_p_unpaired(len(xo), len(xb)), alpha)
        return Comparison(mean, lo, hi, p, "permutation (ties)", n, _verdict(mean, p, alpha), effect_mde, pooled,
                          False)
    dof = (vb + vo) ** 2 / (vb**2 / (len(xb) - 1) + vo**2 / (len(xo) - 1))
    half = _t_ppf(1 - alpha / 2, dof) * se
    p = _t_two_sided_p(mean / se, dof)
    return Comparison(mean, mean - half, mean + half, p, "Welch t", n, _verdict(mean, p, alpha), effect_mde,
                      pooled, False)


def holm_comparisons(comparisons: Sequence[Comparison | None], alpha: float = ALPHA) -> list[Comparison | None]:
    """Holm-correct a study's comparisons with its baseline: sets ``p_holm`` and re-derives ``verdict`` from it."""
    present = [(i, c) for i, c in enumerate(comparisons) if c is not None]
    adjusted = holm([c.p_value for _, c in present])
    out = list(comparisons)
    for (i, c), p in zip(present, adjusted):
        verdict = c.verdict if math.isnan(p) else _verdict(c.diff, p, alpha)
        out[i] = replace(c, p_holm=p, verdict=verdict)
    return out


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaNs stay NaN and do not count).

    ``p_(i) -> max_{j <= i} min(1, (m - j + 1) p_(j))`` over the sorted finite p-values; controls the
    family-wise error rate at alpha without assuming independence.
    """
    finite = [(p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out = [math.nan] * len(pvalues)
    m = len(finite)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


class Bootstrap(NamedTuple):
    """A percentile bootstrap: the estimate, its 95% interval, and the two-sided p of "the statistic is 0"."""

    estimate: float
    low: float
    high: float
    p: float


def bootstrap_ci(groups: Sequence[Sequence[float]] | Sequence[float] | Sequence[np.ndarray],
                 statistic: Callable[..., float] | None = None, *, n_resamples: int = 10_000,
                 confidence: float = 0.95, seed: int = 0) -> Bootstrap:
    """Percentile bootstrap of ``statistic`` over resampled units.

    Args:
        groups: one sequence of numbers (``statistic(resample)``) or several independent groups, each
            resampled on its own (``statistic(resample_1, resample_2, ...)``); resamples are numpy arrays.
            A unit can stand for more than a number, e.g. a seed whose models enter the statistic together.
        statistic: defaults to the mean of one group.
        n_resamples, confidence, seed: the bootstrap's size, level and (fixed) random seed.

    Returns:
        `Bootstrap`; ``p = min(1, 2 min(P*(stat <= 0), P*(stat >= 0)))`` with the ``(1 + k) / (1 + B)``
        correction, so it is never 0.
    """
    several = bool(groups) and isinstance(groups[0], (list, tuple, np.ndarray))
    sets = [np.asarray(g) for g in groups] if several else [np.asarray(groups)]
    stat = statistic or (lambda x: float(np.mean(x)))
    estimate = float(stat(*sets))
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, len(g), (n_resamples, len(g))) for g in sets]
    draws = []
    for r in range(n_resamples):
        value = stat(*(g[idx[r]] for g, idx in zip(sets, picks)))
        if value is not None and math.isfinite(value):
            draws.append(value)
    if not draws:
        return Bootstrap(estimate, math.nan, math.nan, math.nan)
    arr = np.asarray(draws)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(arr, [tail, 100 - tail])
    below, above = (1 + np.sum(arr <= 0)) / (1 + len(arr)), (1 + np.sum(arr >= 0)) / (1 + len(arr))
    return Bootstrap(estimate, float(lo), float(hi), float(min(1.0, 2 * min(below, above))))


def mde_from_ci(low: float, high: float, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """The minimum detectable effect implied by a (normal-theory) 95% interval: ``(z_{1-a/2} + z_power) * se``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return math.inf
    se = (high - low) / (2 * _norm_ppf(0.975))
    return (_norm_ppf(1 - alpha / 2) + _norm_ppf(power)) * se


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score 95% interval of a success rate ``successes / n`` (NaN bounds for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# -- the verdict rule of a claim -----------------------------------------------------------------------------

def judge(estimate: float, ci: tuple[float, float], p: float, *, expect: str, margin: float | None,
          alpha: float = ALPHA) -> tuple[str, str]:
    """The verdict of one claim about a difference, and the part of the rule that decided it.

    Rules (``expect`` "lower"/"higher": the claimed sign of ``estimate``; ``p`` already corrected for
    the family of claims):

    * **reproduced**: the claimed sign and ``p < alpha``;
    * **not reproduced**: the opposite sign and ``p < alpha``, or the 95% CI excludes every effect as
      large as ``margin`` in the claimed direction (so an effect of the size that matters is ruled out);
    * **inconclusive** otherwise.

    ``expect="equivalent"`` (a claim of "comparable"): reproduced when ``p`` (a TOST p-value) is below
    alpha, i.e. the difference is shown to lie inside ±margin; not reproduced when the CI lies entirely
    outside ±margin; inconclusive otherwise.

    ``expect="not-lower"`` (a claim of "does not improve", lower being better): not reproduced when the
    estimate is significantly below 0; reproduced when the CI excludes an improvement as large as the
    margin; inconclusive otherwise.

    Returns:
        ``(verdict, why)`` with ``why`` a short clause for the reason.
    """
    lo, hi = ci
    has_ci = not (math.isnan(lo) or math.isnan(hi))
    significant = not math.isnan(p) and p < alpha
    if expect == "equivalent":
        if margin is None:
            raise ValueError("an equivalence claim needs a margin")
        if significant:
            return "reproduced", f"equivalent within ±{margin:g} (TOST p < {alpha:g})"
        if has_ci and (lo >= margin or hi <= -margin):
            return "not reproduced", f"the CI lies outside ±{margin:g}"
        return "inconclusive", f"the CI reaches beyond ±{margin:g}, so neither equivalence nor a difference is shown"
    if expect == "not-lower":
        if margin is None:
            raise ValueError("a no-improvement claim needs a margin")
        if significant and estimate < 0:
            return "not reproduced", "significantly lower: an improvement"
        if has_ci and lo > -margin:
            return "reproduced", f"the CI rules out an improvement as large as the margin ({margin:g})"
        return "inconclusive", f"the CI allows an improvement as large as the margin ({margin:g})"
    if expect not in ("lower", "higher"):
        raise ValueError(f"expect must be 'lower', 'higher', 'not-lower' or 'equivalent', got {expect!r}")
    claimed = estimate < 0 if expect == "lower" else estimate > 0
    if significant and claimed:
        return "reproduced", f"{expect} as claimed (p < {alpha:g})"
    if significant:
        return "not reproduced", "significantly the opposite way"
    if margin is not None and has_ci and (lo > -margin if expect == "lower" else hi < margin):
        return "not reproduced", (f"the CI excludes an effect as large as the margin ({margin:g}) in the claimed "
                                  "direction")
    if not has_ci:
        return "inconclusive", "no confidence interval (too few runs)"
    if margin is None:
        return "inconclusive", "the CI includes 0 and no equivalence margin was declared"
    return "inconclusive", f"the CI includes both 0 and an effect of the margin's size ({margin:g})"


def tost_p(diff: float, sd: float, n: int, margin: float, *, n2: int | None = None, sd2: float | None = None) -> float:
    """p-value of the two one-sided t-tests that ``|true difference| < margin`` (paired, or Welch with n2)."""
    if n < 2 or not math.isfinite(sd) or (n2 is not None and n2 < 2):
        return math.nan
    if n2 is None:
        se, df = sd / math.sqrt(n), float(n - 1)
    else:
        sd2 = sd if sd2 is None else sd2
        v1, v2 = sd**2 / n, sd2**2 / n2
        se = math.sqrt(v1 + v2)
        df = (v1 + v2) ** 2 / (v1**2 / (n - 1) + v2**2 / (n2 - 1)) if v1 + v2 > 0 else float(n + n2 - 2)
    if se == 0:  # constant differences: the exact one-sided sign test's smallest p, never 0
        floor = 0.5**n if n2 is None else 1 / math.comb(n + n2, n)
        return floor if abs(diff) < margin else 1.0
    p_low = _t_sf((diff + margin) / se, df)  # H0: diff <= -margin
    p_high = _t_cdf((diff - margin) / se, df)  # H0: diff >= margin
    return max(p_low, p_high)
