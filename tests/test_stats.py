"""Report statistics against scipy and hand computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from rectlab.report.stats import compare, summarize


def test_summary_matches_t_interval() -> None:
    x = [10.0, 11.0, 12.5, 9.5]
    s = summarize(x)
    lo, hi = sps.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=sps.sem(x))
    assert s.n == 4 and s.mean == pytest.approx(10.75)
    assert s.std == pytest.approx(np.std(x, ddof=1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(lo), pytest.approx(hi))


def test_single_value_has_no_interval() -> None:
    s = summarize([3.0])
    assert s.n == 1 and s.mean == 3.0 and math.isnan(s.ci_low) and math.isnan(s.std)


def test_paired_when_seeds_match() -> None:
    base = {0: 10.0, 1: 11.0, 2: 12.0, 3: 10.5}
    other = {0: 9.0, 1: 10.2, 2: 11.1, 3: 9.4}
    c = compare(base, other)
    d = np.array([other[k] - base[k] for k in base])
    assert c.test == "paired t"
    assert c.diff == pytest.approx(d.mean())
    assert c.p_value == pytest.approx(sps.ttest_rel(list(other.values()), list(base.values())).pvalue)
    half = sps.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (c.ci_low, c.ci_high) == (pytest.approx(d.mean() - half), pytest.approx(d.mean() + half))
    assert c.verdict == "better"


def test_welch_when_seeds_differ() -> None:
    base = {0: 10.0, 1: 11.0, 2: 12.0}
    other = {5: 13.0, 6: 14.5, 7: 13.8, 8: 14.1}
    c = compare(base, other)
    assert c.test == "Welch t"
    assert c.p_value == pytest.approx(sps.ttest_ind(list(other.values()), list(base.values()), equal_var=False).pvalue)
    assert c.diff == pytest.approx(np.mean(list(other.values())) - 11.0)
    assert c.ci_low < c.diff < c.ci_high
    assert c.verdict == "worse"


def test_noise_gives_no_significant_difference() -> None:
    c = compare({0: 10.0, 1: 12.0, 2: 11.0}, {0: 11.5, 1: 10.5, 2: 11.2})
    assert c.verdict == "no significant difference"
    assert c.ci_low < 0 < c.ci_high


def test_fewer_than_three_seeds_run_no_test_and_say_how_many_are_needed() -> None:
    c = compare({0: 10.0}, {0: 9.0})
    assert c.too_few and c.test == "none" and math.isnan(c.p_value) and math.isnan(c.ci_low)
    assert c.verdict.startswith("too few seeds") and c.needed == 3 and c.diff == pytest.approx(-1.0)
    two = compare({0: 10.0, 1: 10.4}, {0: 10.1, 1: 10.6})  # n = 2: no test, whatever the values
    assert two.too_few and two.needed is not None and two.needed > 3 and two.mde == math.inf


def test_identical_values_are_not_different() -> None:
    c = compare({0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert c.p_value == 1.0 and c.verdict == "no significant difference"


# -- exact tests, power, multiplicity, verdict rule ------------------------------------------------------------

from rectlab.report.stats import (  # noqa: E402
    bootstrap_ci,
    compare_family,
    holm,
    holm_levels,
    judge,
    mde,
    permutation_test,
    rate_mde,
    rate_p,
    rate_seeds_for,
    seeds_for,
    sign_flip_test,
    tost_p,
    wilson,
)


def test_constant_paired_differences_never_give_p_zero() -> None:
    base = {s: 10.0 + s for s in range(5)}
    c = compare(base, {s: v - 1.0 for s, v in base.items()})
    assert c.test == "sign-flip (ties)" and c.p_value == pytest.approx(2 / 2**5)
    assert c.verdict == "no significant difference" and c.mde == math.inf  # 5 pairs cannot reach p < 0.05
    eight = {s: 10.0 + s for s in range(8)}
    c8 = compare(eight, {s: v - 1.0 for s, v in eight.items()})
    assert c8.p_value == pytest.approx(2 / 2**8) and c8.verdict == "better" and c8.mde == 0.0


def test_tied_counts_use_the_exact_sign_flip_test() -> None:
    base = {s: 3.0 for s in range(6)}
    other = {0: 1.0, 1: 1.0, 2: 2.0, 3: 1.0, 4: 3.0, 5: 2.0}  # differences -2,-2,-1,-2,0,-1: ties
    c = compare(base, other)
    d = np.array([other[s] - base[s] for s in range(6)])
    signs = np.array(list(itertools.product((1, -1), repeat=6)))
    expected = np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12)
    assert c.test == "sign-flip (ties)" and c.p_value == pytest.approx(expected) and c.p_value > 0
    assert sign_flip_test([0.0, 0.0, 0.0]) == 1.0


def test_permutation_test_matches_enumeration_and_is_never_zero() -> None:
    x, y = [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]
    assert permutation_test(x, y) == pytest.approx(2 / math.comb(6, 3))
    c = compare({0: 1.0, 1: 1.0, 2: 1.0}, {5: 2.0, 6: 2.0, 7: 2.0})
    assert c.test == "permutation (ties)" and c.p_value == pytest.approx(0.1)


def test_mde_gives_80_percent_power() -> None:
    n, sd = 10, 1.0
    effect = mde(sd, n)
    assert 0.9 < effect < 1.1  # G*Power: d = 0.99 for a paired t-test, n = 10, alpha .05, power .8
    rng = np.random.default_rng(0)
    samples = rng.normal(effect, sd, size=(4000, n))
    power = np.mean(sps.ttest_1samp(samples, 0.0, axis=1).pvalue < 0.05)
    assert power == pytest.approx(0.8, abs=0.025)
    welch = mde(1.0, 10, n2=10)
    assert welch > effect  # two independent groups of 10 need a larger effect than 10 pairs of the same spread
    assert mde(1.0, 1) == math.inf
    assert seeds_for(effect, sd) == n and seeds_for(effect / 2, sd) > 3 * n


def test_holm_step_down() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = holm([0.2, math.nan, 0.001])
    assert adjusted[0] == pytest.approx(0.2) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.002)


def test_judge_five_labels_of_a_directional_claim() -> None:
    # claim: lower, margin 0.5 (the claimed size is -0.5)
    assert judge(-1.0, (-1.5, -0.5), expect="lower", margin=0.5)[0] == "reproduced"
    assert judge(-0.2, (-0.6, -0.01), expect="lower", margin=0.5)[0] == "reproduced"  # reaches -0.5
    verdict, why = judge(-0.2, (-0.39, -0.01), expect="lower", margin=0.5)
    assert verdict == "weaker than claimed" and "excludes" in why  # significant, but smaller than the paper's
    verdict, why = judge(-0.1, (-0.3, 0.1), expect="lower", margin=0.5)
    assert verdict == "not reproduced" and "not significant" in why
    assert judge(1.0, (0.5, 1.5), expect="lower", margin=0.5)[0] == "contradicted"
    assert judge(-0.3, (-0.9, 0.3), expect="lower", margin=0.5)[0] == "inconclusive"
    # mirror: higher
    assert judge(0.2, (-0.1, 0.5), expect="higher", margin=1.0)[0] == "not reproduced"
    assert judge(0.4, (0.1, 0.7), expect="higher", margin=1.0)[0] == "weaker than claimed"
    assert judge(-0.4, (-0.7, -0.1), expect="higher", margin=1.0)[0] == "contradicted"
    # without a margin only three labels remain
    assert judge(-0.2, (-0.39, -0.01), expect="lower", margin=None)[0] == "reproduced"
    assert judge(-0.1, (-0.3, 0.1), expect="lower", margin=None)[0] == "inconclusive"
    assert judge(0.0, (math.nan, math.nan), expect="lower", margin=0.5)[0] == "inconclusive"
    with pytest.raises(ValueError, match="expect"):
        judge(0.0, (0.0, 0.0), expect="smaller", margin=None)


def test_judge_rate_claims_against_a_threshold_and_a_claimed_level() -> None:
    # "most runs stall" (threshold 1/2), the paper's "always" (level 0.9): the same five labels
    def rate(k: int, n: int) -> str:
        return judge(k / n, wilson(k, n), expect="higher", margin=0.4, null=0.5)[0]

    assert rate(24, 24) == "reproduced" and rate(22, 24) == "reproduced"
    assert rate(70, 100) == "weaker than claimed"  # most, but not always
    assert rate(12, 24) == "not reproduced"  # 50%: not most, and "always" is ruled out
    assert rate(50, 100) == "not reproduced"
    assert rate(2, 24) == "contradicted"  # most runs do not stall
    assert rate(3, 4) == "inconclusive"


def test_judge_one_sided_claims() -> None:
    assert judge(0.1, (-0.2, 0.4), expect="equivalent", margin=1.0)[0] == "reproduced"
    assert judge(3.0, (2.0, 4.0), expect="equivalent", margin=1.0)[0] == "contradicted"
    assert judge(0.5, (-0.4, 1.4), expect="equivalent", margin=1.0)[0] == "inconclusive"
    assert judge(0.1, (-0.2, 0.4), expect="not-lower", margin=0.5)[0] == "reproduced"
    assert judge(-0.2, (-0.35, -0.05), expect="not-lower", margin=0.5)[0] == "reproduced"  # the margin, both ways
    assert judge(-1.0, (-1.4, -0.6), expect="not-lower", margin=0.5)[0] == "contradicted"
    assert judge(-0.5, (-0.8, -0.2), expect="not-lower", margin=0.5)[0] == "inconclusive"
    assert judge(0.1, (-0.3, 0.2), expect="not-higher", margin=0.3)[0] == "reproduced"
    assert judge(0.6, (0.4, 0.8), expect="not-higher", margin=0.3)[0] == "contradicted"
    with pytest.raises(ValueError, match="needs a margin"):
        judge(0.0, (0.0, 0.0), expect="equivalent", margin=None)


def test_holm_levels_agree_with_holm_decisions() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = list(rng.uniform(0, 0.08, rng.integers(1, 6)))
        levels, adjusted = holm_levels(p), holm(p)
        assert [pi < level for pi, level in zip(p, levels)] == [a < 0.05 for a in adjusted]
    assert holm_levels([0.03, 0.04]) == pytest.approx([0.025, 0.025])  # the first not rejected: both keep 0.025
    assert holm_levels([0.001, 0.04, 0.03]) == pytest.approx([0.05 / 3, 0.025, 0.025])
    assert holm_levels([0.001, 0.04, 0.02]) == pytest.approx([0.05 / 3, 0.05, 0.025])


def test_compare_family_uses_the_holm_level_for_ci_and_mde() -> None:
    base = {s: 10.0 + 0.3 * s for s in range(6)}
    a = {s: v - 1.0 + 0.05 * (s % 2) for s, v in base.items()}
    b = {s: v - 0.4 + 0.3 * (s % 3) for s, v in base.items()}
    first, second = compare_family([(base, a), (base, b), None])[:2]
    alone = compare(base, b)
    assert first.alpha == pytest.approx(0.025) and second.alpha in (pytest.approx(0.025), pytest.approx(0.05))
    k = first if first.alpha < second.alpha else second
    same = compare(base, a if k is first else b, alpha=k.alpha)
    assert (k.ci_low, k.ci_high, k.mde) == (
        pytest.approx(same.ci_low),
        pytest.approx(same.ci_high),
        pytest.approx(same.mde),
    )
    assert mde(alone.sd, alone.n, alpha=0.025) > alone.mde  # a stricter level needs a larger effect
    for c in (first, second):  # the verdict agrees with its interval
        assert (c.verdict == "no significant difference") == (c.ci_low <= 0 <= c.ci_high)
    assert compare_family([None]) == [None]


def test_rate_test_and_interval_agree() -> None:
    for k, n, t in ((12, 24, 0.5), (20, 24, 0.5), (3, 10, 0.9), (100, 100, 0.9)):
        lo, hi = wilson(k, n, alpha=0.01)
        assert (not lo <= t <= hi) == (rate_p(k, n, t) < 0.01)
    assert rate_mde(0.5, 100) == pytest.approx((1.959964 + 0.841621) * 0.05, rel=1e-4)
    assert rate_seeds_for(0.5, 0.5, 0.9) is not None and rate_seeds_for(0.5, 0.5, None) is None


def test_tost_and_bootstrap() -> None:
    assert tost_p(0.0, 1.0, 30, margin=1.0) < 0.001 and tost_p(0.0, 1.0, 3, margin=0.1) > 0.4
    assert 0 < tost_p(0.0, 0.0, 8, margin=1.0) < 0.01  # zero spread: the exact floor, not 0
    est, lo, hi, p = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert est == 3.0 and 1.0 <= lo < 3.0 < hi <= 5.0 and 0 < p < 0.01
    est, lo, hi, p = bootstrap_ci([[1.0, 1.1, 0.9], [2.0, 2.1, 1.9]], lambda a, b: np.mean(b) - np.mean(a))
    assert est == pytest.approx(1.0) and 0.7 < lo < 1.0 < hi < 1.3 and p == pytest.approx(2 / 10_001)
    assert bootstrap_ci([-1.0, 1.0, -0.5, 0.5]).p > 0.5
