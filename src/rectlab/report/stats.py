"""Statistics for studies and reproductions: summaries, comparisons, power, multiplicity and verdict rules.

The EraseReLU paper was criticized for reporting single numbers; rectlab always reports n, the mean,
the standard deviation, a 95% confidence interval (Student t) and, against the baseline, the
difference with its confidence interval and a p-value:

* paired by seed when both cells ran the same seeds (the seed fixes init and data order, so pairing
  removes that shared variance): a paired t-test, or an exact sign-flip permutation test when the
  differences are tied or constant (discrete metrics such as counts of dead units), so that zero
  variance never gives p = 0;
* otherwise Welch's t-test, or a permutation test of the difference in means when values tie.

Fewer than `MIN_SEEDS` values per cell give no test: the comparison says that n is too small and
how many seeds would be needed.

Every comparison also reports its **minimum detectable effect** (MDE): the smallest true difference
the test would detect with 80% power at the alpha the comparison is judged at, given the observed
spread and n (from the noncentral t distribution). A family of comparisons is corrected with Holm's
step-down method: `holm` adjusts the p-values and `holm_levels` gives the level each comparison is
tested at, so that its confidence interval, its MDE and its verdict all use that same level
(`compare_family`). `judge` applies the five-label verdict rule of a claim (see its docstring),
`wilson` and `rate_p` test rates against a threshold, and `bootstrap_ci` gives percentile intervals
where no closed form fits (e.g. the prediction difference averaged over all pairs of seeds).
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
    "KINDS",
    "LABELS",
    "MIN_SEEDS",
    "POWER",
    "Bootstrap",
    "Comparison",
    "Summary",
    "bootstrap_ci",
    "bootstrap_draws",
    "bootstrap_interval",
    "compare",
    "compare_family",
    "holm",
    "holm_levels",
    "judge",
    "mde",
    "mde_from_ci",
    "one_sided_p",
    "permutation_test",
    "rate_mde",
    "rate_p",
    "rate_seeds_for",
    "seeds_for",
    "sign_flip_test",
    "summarize",
    "tost_p",
    "wilson",
]

ALPHA = 0.05
POWER = 0.8
MIN_SEEDS = 3  # fewer values per cell: no test (two values give a t-test with 1 degree of freedom)
# The verdicts of a claim, from best to worst for the claim (see `judge`).
LABELS = ("reproduced", "weaker than claimed", "not reproduced", "contradicted", "inconclusive")
# The kinds of claim `judge` knows: the claimed sign of a difference, "comparable within ±margin", and
# "not lower / not higher by as much as the margin".
KINDS = ("lower", "higher", "equivalent", "not-lower", "not-higher")
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
        ci_low, ci_high: its ``1 - alpha`` confidence interval.
        p_value: two-sided p-value (NaN when it cannot be computed; never 0).
        test: "paired t", "sign-flip (ties)", "Welch t" or "permutation (ties)" ("none" without a test).
        n: pairs (paired) or the smaller group size.
        verdict: "better", "worse", "no significant difference" or "too few seeds (...)".
        mde: minimum detectable effect (80% power, two-sided ``alpha``) from the observed spread.
        sd: the spread behind the test (sd of the paired differences; for Welch the pooled sd).
        paired: whether the test paired the groups by seed.
        p_holm: ``p_value`` after Holm's correction over the study's comparisons (NaN until corrected).
        alpha: the level of the interval, the MDE and the verdict (Holm's level for this comparison when
            it was corrected together with others, see `compare_family`).
        needed: with too few seeds, the seeds per cell a test needs (at least `MIN_SEEDS`; more when the
            observed spread says so); None otherwise.
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
    alpha: float = ALPHA
    needed: int | None = None

    @property
    def too_few(self) -> bool:
        """True when there were too few seeds for a test."""
        return self.needed is not None


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


def _invert(
    p_at: Callable[[float], float], estimate: float, far_low: float, far_high: float, floor: float, alpha: float
) -> tuple[float, float]:
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


def mde(
    sd: float, n: int, *, n2: int | None = None, sd2: float | None = None, alpha: float = ALPHA, power: float = POWER
) -> float:
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


def seeds_for(
    effect: float, sd: float, *, paired: bool = True, alpha: float = ALPHA, power: float = POWER, limit: int = 10_000
) -> int | None:
    """The smallest n (pairs, or seeds per group for Welch with equal sds) that detects ``effect`` at ``power``.

    Returns ``None`` when the spread is unknown or more than ``limit`` seeds would be needed.
    """
    if not (math.isfinite(sd) and math.isfinite(effect)) or effect <= 0:
        return None
    if sd == 0:  # no spread: the exact tests need p < alpha, i.e. enough seeds for the smallest possible p
        return next((n for n in range(2, 64) if (_min_p_paired(n) if paired else _min_p_unpaired(n, n)) < alpha), None)

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
        return "no test possible"
    if p < alpha:
        return "better" if diff < 0 else "worse"
    return "no significant difference"


def _tied(values: np.ndarray) -> bool:
    return len(np.unique(values)) < len(values)


def _too_few(b: Mapping[int, float], o: Mapping[int, float], alpha: float) -> Comparison:
    """No test: fewer than `MIN_SEEDS` values in a cell. Says how many seeds a test would need."""
    n = min(len(b), len(o))
    d = float(np.mean(list(o.values())) - np.mean(list(b.values()))) if b and o else math.nan
    needed = MIN_SEEDS
    spreads = [float(np.std(list(g.values()), ddof=1)) for g in (b, o) if len(g) >= 2]
    if spreads and math.isfinite(d) and d != 0:  # the seeds that would detect a difference of the observed size
        sd = math.sqrt(float(np.mean(np.square(spreads))))
        needed = max(MIN_SEEDS, seeds_for(abs(d), sd, paired=False, alpha=alpha) or MIN_SEEDS)
    return Comparison(
        d,
        math.nan,
        math.nan,
        math.nan,
        "none",
        n,
        f"too few seeds (n={n}; a test needs at least {MIN_SEEDS} per cell)",
        math.inf,
        alpha=alpha,
        needed=needed,
    )


def compare(
    baseline: Mapping[int, float],
    other: Mapping[int, float],
    alpha: float = ALPHA,
    *,
    method: str | None = None,
    power: bool = True,
) -> Comparison:
    """Compare two cells given ``{seed: value}`` for each (lower values are better).

    Paired by seed when both ran exactly the same seeds, Welch otherwise; tied or constant values switch
    to the exact permutation tests (see the module docstring). Fewer than `MIN_SEEDS` values in a cell
    give no test (``too_few``).

    Args:
        baseline, other: per-seed values.
        alpha: the level of the interval, the MDE and the verdict.
        method: ``"t"`` or ``"exact"`` forces the test family (e.g. for bootstrap resamples, where drawn
            seeds repeat and would otherwise switch a t-test to the exact test); None chooses by the data.
        power: compute the MDE (skipped, as NaN, when only the interval and p are needed).
    """
    b = {k: v for k, v in baseline.items() if v is not None and not math.isnan(v)}
    o = {k: v for k, v in other.items() if v is not None and not math.isnan(v)}
    if len(b) < MIN_SEEDS or len(o) < MIN_SEEDS:
        return _too_few(b, o, alpha)
    if set(b) == set(o):
        seeds = sorted(b)
        d = np.array([o[s] - b[s] for s in seeds])
        n = len(d)
        mean, sd = float(d.mean()), float(d.std(ddof=1))
        exact = method == "exact" or sd == 0 or (method is None and _tied(d))
        if exact:  # discrete values: the exact test, and the interval that inverts it
            p, test = sign_flip_test(d), "sign-flip (ties)"
            span = float(d.max() - d.min()) + 1.0
            lo, hi = _invert(
                lambda delta: sign_flip_test(d - delta),
                mean,
                float(d.min()) - span,
                float(d.max()) + span,
                _min_p_paired(n),
                alpha,
            )
        else:
            p = _t_two_sided_p(mean / (sd / math.sqrt(n)), n - 1)
            test = "paired t"
            half = _t_ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
            lo, hi = mean - half, mean + half
        effect = mde(sd, n, alpha=alpha) if power else math.nan
        return Comparison(mean, lo, hi, p, test, n, _verdict(mean, p, alpha), effect, sd, True, alpha=alpha)
    xb, xo = np.array(list(b.values())), np.array(list(o.values()))
    mean = float(xo.mean() - xb.mean())
    sb, so = float(xb.std(ddof=1)), float(xo.std(ddof=1))
    vb, vo = sb**2 / len(xb), so**2 / len(xo)
    se = math.sqrt(vb + vo)
    n = min(len(xb), len(xo))
    pooled = math.sqrt((sb**2 + so**2) / 2)
    effect_mde = mde(so, len(xo), n2=len(xb), sd2=sb, alpha=alpha) if power else math.nan
    if method == "exact" or se == 0 or (method is None and _tied(np.concatenate([xb, xo]))):
        p = permutation_test(xo, xb)
        span = float(max(xo.max(), xb.max()) - min(xo.min(), xb.min())) + 1.0
        lo, hi = _invert(
            lambda delta: permutation_test(xo - delta, xb),
            mean,
            mean - 2 * span,
            mean + 2 * span,
            _min_p_unpaired(len(xo), len(xb)),
            alpha,
        )
        return Comparison(
            mean, lo, hi, p, "permutation (ties)", n, _verdict(mean, p, alpha), effect_mde, pooled, False, alpha=alpha
        )
    dof = (vb + vo) ** 2 / (vb**2 / (len(xb) - 1) + vo**2 / (len(xo) - 1))
    half = _t_ppf(1 - alpha / 2, dof) * se
    p = _t_two_sided_p(mean / se, dof)
    return Comparison(
        mean,
        mean - half,
        mean + half,
        p,
        "Welch t",
        n,
        _verdict(mean, p, alpha),
        effect_mde,
        pooled,
        False,
        alpha=alpha,
    )


def compare_family(
    pairs: Sequence[tuple[Mapping[int, float], Mapping[int, float]] | None], alpha: float = ALPHA
) -> list[Comparison | None]:
    """Compare several cells with their baselines as one family (``(baseline, other)`` pairs; None: no comparison).

    The p-values are Holm-corrected together (``p_holm``); each comparison's interval, MDE and verdict are
    computed at the level Holm tests it at (`holm_levels`), so that "better" or "worse" always comes
    with an interval that excludes 0 and "no significant difference" with one that includes it.
    """
    first = [compare(*pair, alpha=alpha, power=False) if pair is not None else None for pair in pairs]
    pvalues = [c.p_value if c is not None else math.nan for c in first]
    adjusted, levels = holm(pvalues), holm_levels(pvalues, alpha)
    out: list[Comparison | None] = []
    for pair, c, p_holm, level in zip(pairs, first, adjusted, levels):
        if pair is None or c is None:
            out.append(None)
            continue
        k = compare(*pair, alpha=level)
        out.append(
            replace(k, p_holm=p_holm, verdict=k.verdict if math.isnan(p_holm) else _verdict(k.diff, p_holm, alpha))
        )
    return out


def holm_levels(pvalues: Sequence[float], alpha: float = ALPHA) -> list[float]:
    """The level at which Holm's step-down procedure tests each p-value (NaN p-values get ``alpha``).

    Sorted ascending, the i-th of m finite p-values (0-based) is tested at ``alpha / (m - i)`` as long as
    every smaller one was rejected; after the first that is not, every later one keeps that first level,
    so ``p < level`` exactly when the Holm-adjusted p is below ``alpha``. An interval at ``1 - level`` then
    agrees with Holm's decision (it excludes the null exactly when Holm rejects it).
    """
    finite = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p))
    out = [alpha] * len(pvalues)
    m = len(finite)
    stopped: float | None = None
    for rank, (p, i) in enumerate(finite):
        level = alpha / (m - rank) if stopped is None else stopped
        if stopped is None and not p < level:
            stopped = level
        out[i] = level
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


def bootstrap_draws(
    groups: Sequence[Sequence[float]] | Sequence[float] | Sequence[np.ndarray],
    statistic: Callable[..., float] | None = None,
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """The statistic on the data and on ``n_resamples`` bootstrap resamples (finite values only).

    Args:
        groups: one sequence of numbers (``statistic(resample)``) or several independent groups, each
            resampled on its own (``statistic(resample_1, resample_2, ...)``); resamples are numpy arrays.
            A unit can stand for more than a number, e.g. a seed whose models enter the statistic together.
        statistic: defaults to the mean of one group.
        n_resamples, seed: the bootstrap's size and (fixed) random seed.
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
    return estimate, np.asarray(draws, dtype=float)


def bootstrap_interval(estimate: float, draws: np.ndarray, confidence: float = 0.95) -> Bootstrap:
    """The percentile interval at ``confidence`` and the two-sided p of "the statistic is 0" from bootstrap draws:
    ``p = min(1, 2 min(P*(stat <= 0), P*(stat >= 0)))`` with the ``(1 + k) / (1 + B)`` correction, never 0."""
    if len(draws) == 0:
        return Bootstrap(estimate, math.nan, math.nan, math.nan)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    below, above = (1 + np.sum(draws <= 0)) / (1 + len(draws)), (1 + np.sum(draws >= 0)) / (1 + len(draws))
    return Bootstrap(estimate, float(lo), float(hi), float(min(1.0, 2 * min(below, above))))


def bootstrap_ci(
    groups: Sequence[Sequence[float]] | Sequence[float],
    statistic: Callable[..., float] | None = None,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Bootstrap:
    """Percentile bootstrap of ``statistic`` over resampled units (see `bootstrap_draws` and `bootstrap_interval`).

    Returns:
        `Bootstrap`: the estimate, its interval at ``confidence`` and the p of "the statistic is 0".
    """
    estimate, draws = bootstrap_draws(groups, statistic, n_resamples=n_resamples, seed=seed)
    return bootstrap_interval(estimate, draws, confidence)


def mde_from_ci(
    low: float, high: float, *, alpha: float = ALPHA, power: float = POWER, confidence: float = 0.95
) -> float:
    """The minimum detectable effect at ``alpha`` implied by a (normal-theory) interval at ``confidence``:
    ``(z_{1-alpha/2} + z_power) * se``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return math.inf
    se = (high - low) / (2 * _norm_ppf(1 - (1 - confidence) / 2))
    return (_norm_ppf(1 - alpha / 2) + _norm_ppf(power)) * se


def wilson(successes: float, n: int, z: float | None = None, *, alpha: float = ALPHA) -> tuple[float, float]:
    """Wilson score interval of a success rate ``successes / n`` at ``1 - alpha`` (NaN bounds for n = 0).

    The interval inverts the score test (`rate_p`): it excludes a rate ``t`` exactly when
    ``rate_p(successes, n, t) < alpha``. ``z`` overrides the normal quantile (default ``z_{1 - alpha/2}``).
    """
    if n == 0:
        return math.nan, math.nan
    z = _norm_ppf(1 - alpha / 2) if z is None else z
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_p(successes: float, n: int, null: float) -> float:
    """Two-sided p-value of the score test of "the rate is ``null``" (the test the Wilson interval inverts)."""
    if n == 0 or not 0 < null < 1:
        return math.nan
    z = (successes / n - null) / math.sqrt(null * (1 - null) / n)
    return float(2 * special.ndtr(-abs(z)))


def rate_mde(null: float, n: int, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest departure of a rate from ``null`` the score test detects with ``power`` (normal theory)."""
    if n == 0 or not 0 < null < 1:
        return math.inf
    return (_norm_ppf(1 - alpha / 2) + _norm_ppf(power)) * math.sqrt(null * (1 - null) / n)


def rate_seeds_for(
    rate: float, null: float, level: float | None, *, alpha: float = ALPHA, limit: int = 10_000
) -> int | None:
    """The smallest n at which a rate observed at ``rate`` would have a Wilson interval that excludes ``null``
    or ``level`` (what would decide an inconclusive rate claim); None beyond ``limit``."""

    def decided(n: int) -> bool:
        lo, hi = wilson(rate * n, n, alpha=alpha)
        return not lo <= null <= hi or (level is not None and not lo <= level <= hi)

    if not decided(limit):
        return None
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi) // 2
        if decided(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


# -- the verdict rule of a claim -----------------------------------------------------------------------------


def judge(
    estimate: float, ci: tuple[float, float], *, expect: str, margin: float | None, null: float = 0.0
) -> tuple[str, str]:
    """The verdict of one claim from the interval of its estimate, and the part of the rule that decided it.

    The interval must be the one at the level the claim is tested at (Holm's level among the study's
    primary claims; ``1 - 2 alpha`` for the one-sided claims below), so that "the interval excludes x"
    means "significantly different from x".

    **Directional claims** (``expect`` "lower" or "higher": the claimed side of ``null``, 0 for a
    difference or a threshold for a rate) with a margin ``m`` (the smallest effect that counts as the
    paper's, declared before running), for "lower":

    * **reproduced**: the interval lies below ``null`` (significant in the claimed direction) and does not
      exclude an effect of ``null - m``;
    * **weaker than claimed**: it lies below ``null`` but above ``null - m`` (a real effect, smaller than
      the paper's);
    * **not reproduced**: it includes ``null`` and lies above ``null - m`` (any effect is below the paper's);
    * **contradicted**: it lies above ``null`` (significant in the opposite direction);
    * **inconclusive**: it includes both ``null`` and ``null - m`` (the report says what n would decide).

    "higher" mirrors it. Without a margin, "weaker than claimed" and "not reproduced" cannot occur.
    A rate claim ("most runs stall", "always solves XOR") is a directional claim on the rate with
    ``null`` = the threshold ("most" = 1/2) and ``null + m`` = the claimed level ("always" = 0.9).

    **Claims of no (large) difference** use one-sided tests, so their interval is the ``1 - 2 alpha`` one:

    * ``expect="equivalent"`` ("comparable within ±m"): **reproduced** when the interval lies inside
      ``(-m, m)``; **contradicted** when it lies beyond ``m`` or below ``-m``; **inconclusive** otherwise.
    * ``expect="not-lower"`` ("does not improve by as much as m", lower being better): **reproduced** when
      the interval lies above ``-m``; **contradicted** when it lies below ``-m``; **inconclusive**
      otherwise. ``"not-higher"`` mirrors it (e.g. "GELU is not worse than the best by more than m").

    Returns:
        ``(verdict, why)`` with ``why`` a short clause for the reason.

    Raises:
        ValueError: for an unknown ``expect`` or a missing margin where one is needed.
    """
    if expect not in KINDS:
        raise ValueError(f"expect must be one of {', '.join(map(repr, KINDS))}, got {expect!r}")
    lo, hi = ci
    if math.isnan(lo) or math.isnan(hi):
        return "inconclusive", "no confidence interval (too few runs)"
    if expect in ("equivalent", "not-lower", "not-higher"):
        if margin is None:
            raise ValueError(f"a claim of kind {expect!r} needs a margin")
        m = margin
        if expect == "equivalent":
            if -m < lo and hi < m:
                return "reproduced", f"the interval lies inside ±{m:g}"
            if lo >= m or hi <= -m:
                return "contradicted", f"the interval lies outside ±{m:g}"
            return "inconclusive", f"the interval reaches beyond ±{m:g}"
        bound, side = (-m, "below") if expect == "not-lower" else (m, "above")
        if (lo > bound) if expect == "not-lower" else (hi < bound):
            return "reproduced", f"the interval rules out a difference {side} {bound:+g}"
        if (hi <= bound) if expect == "not-lower" else (lo >= bound):
            return "contradicted", f"the interval lies {side} {bound:+g}"
        return "inconclusive", f"the interval includes {bound:+g}"
    lower = expect == "lower"
    target = None if margin is None else (null - margin if lower else null + margin)
    claimed = hi < null if lower else lo > null
    opposite = lo > null if lower else hi < null
    excludes_target = target is not None and (lo > target if lower else hi < target)
    where = f"{null:g}" if null else "0"
    size = "" if target is None else f"an effect as large as the claimed size ({target:g})"
    if claimed:
        if excludes_target:
            return "weaker than claimed", f"significantly {expect} than {where}, but the interval excludes {size}"
        return "reproduced", f"significantly {expect} than {where}" + (
            f", and the interval reaches {size}" if target is not None else ""
        )
    if opposite:
        return "contradicted", f"significantly {'higher' if lower else 'lower'} than {where}: the opposite direction"
    if excludes_target:
        return "not reproduced", f"not significant, and the interval excludes {size}"
    if target is None:
        return "inconclusive", f"the interval includes {where} and no margin was declared"
    return "inconclusive", f"the interval includes both {where} and {size}"


def one_sided_p(
    diff: float, sd: float, n: int, bound: float, side: str, *, n2: int | None = None, sd2: float | None = None
) -> float:
    """p-value of the one-sided t-test that the true difference lies ``side`` ("above" or "below") ``bound``.

    Paired (``n`` pairs with sd ``sd``) or Welch (``n`` and ``n2`` values with sds ``sd`` and ``sd2``);
    constant differences give the exact sign test's smallest p, never 0.
    """
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
        return floor if (diff > bound if side == "above" else diff < bound) else 1.0
    if side == "above":  # H0: diff <= bound
        return _t_sf((diff - bound) / se, df)
    return _t_cdf((diff - bound) / se, df)  # H0: diff >= bound


def tost_p(diff: float, sd: float, n: int, margin: float, *, n2: int | None = None, sd2: float | None = None) -> float:
    """p-value of the two one-sided t-tests that ``|true difference| < margin`` (paired, or Welch with n2)."""
    return max(
        one_sided_p(diff, sd, n, -margin, "above", n2=n2, sd2=sd2),
        one_sided_p(diff, sd, n, margin, "below", n2=n2, sd2=sd2),
    )
