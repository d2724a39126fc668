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


def test_too_few_seeds_is_inconclusive() -> None:
    c = compare({0: 10.0}, {0: 9.0})
    assert c.verdict.startswith("inconclusive")
    assert c.diff == pytest.approx(-1.0)


def test_identical_values_are_not_different() -> None:
    c = compare({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
    assert c.p_value == 1.0 and c.verdict == "no significant difference"


# -- exact tests, power, multiplicity, verdict rule ------------------------------------------------------------

from rectlab.report.stats import (  # noqa: E402
    bootstrap_ci,
    holm,
    judge,
    mde,
    permutation_test,
    seeds_for,
    sign_flip_test,
    tost_p,
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


def test_judge_rules() -> None:
    assert judge(-1.0, (-1.5, -0.5), 0.001, expect="lower", margin=0.5)[0] == "reproduced"
    assert judge(1.0, (0.5, 1.5), 0.001, expect="lower", margin=0.5)[0] == "not reproduced"
    verdict, why = judge(-0.1, (-0.3, 0.1), 0.3, expect="lower", margin=0.5)
    assert verdict == "not reproduced" and "margin" in why  # the CI rules out a gain of 0.5
    assert judge(-0.3, (-0.9, 0.3), 0.3, expect="lower", margin=0.5)[0] == "inconclusive"
    assert judge(0.2, (-0.1, 0.5), 0.2, expect="higher", margin=1.0)[0] == "not reproduced"
    assert judge(0.1, (-0.2, 0.4), 0.01, expect="equivalent", margin=1.0)[0] == "reproduced"
    assert judge(3.0, (2.0, 4.0), 0.9, expect="equivalent", margin=1.0)[0] == "not reproduced"
    assert judge(0.1, (-0.2, 0.4), 0.6, expect="not-lower", margin=0.5)[0] == "reproduced"
    assert judge(-1.0, (-1.4, -0.6), 0.001, expect="not-lower", margin=0.5)[0] == "not reproduced"
    with pytest.raises(ValueError, match="expect"):
        judge(0.0, (0.0, 0.0), 1.0, expect="smaller", margin=None)


def test_tost_and_bootstrap() -> None:
    assert tost_p(0.0, 1.0, 30, margin=1.0) < 0.001 and tost_p(0.0, 1.0, 3, margin=0.1) > 0.4
    assert 0 < tost_p(0.0, 0.0, 8, margin=1.0) < 0.01  # zero spread: the exact floor, not 0
    est, lo, hi, p = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert est == 3.0 and 1.0 <= lo < 3.0 < hi <= 5.0 and 0 < p < 0.01
    est, lo, hi, p = bootstrap_ci([[1.0, 1.1, 0.9], [2.0, 2.1, 1.9]], lambda a, b: np.mean(b) - np.mean(a))
    assert est == pytest.approx(1.0) and 0.7 < lo < 1.0 < hi < 1.3 and p == pytest.approx(2 / 10_001)
    assert bootstrap_ci([-1.0, 1.0, -0.5, 0.5]).p > 0.5
