"""Report statistics against scipy and hand computations."""

from __future__ import annotations

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
