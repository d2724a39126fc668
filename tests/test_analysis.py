"""rectlab.analyze / `rectlab analyze`: a study's statistics for results computed elsewhere, and the across-task
aggregates of Agarwal et al. 2021 (IQM, stratified bootstrap, probability of improvement, performance profiles)
checked on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rectlab
from rectlab.cli.main import main as cli
from rectlab.report import AnalysisError, collect
from rectlab.report.aggregate import (
    across_tasks,
    iqm,
    performance_profile,
    probability_of_improvement,
    stratified_bootstrap,
)
from rectlab.study import parse_spec, run_study
from study_helpers import tiny_spec

pytestmark = pytest.mark.usefixtures("one_thread")

FIELDS = ("diff", "ci_low", "ci_high", "p_value", "p_holm", "mde", "test", "verdict", "n", "paired")


def test_analyze_on_an_exported_csv_gives_the_builtin_comparison(tmp_path, capsys) -> None:
    out = tmp_path / "study"
    run_study(parse_spec(tiny_spec(("relu", "elu", "selu"), seeds=3, epochs=2)), out, progress=False)
    builtin = collect(out)
    csv = tmp_path / "results.csv"
    assert cli(["export", str(out), "--csv", str(csv)]) == 0
    analysis = rectlab.analyze(csv, metric="test_error", by="activation", baseline="relu", pair_by="seed")
    assert [c.label for c in analysis.cells] == [c.label for c in builtin.cells]
    for mine, theirs in zip(analysis.cells, builtin.cells):
        assert mine.summary == theirs.summary
        if theirs.comparison is None:
            assert mine.comparison is None
            continue
        for name in FIELDS:  # the same numbers: exactly the same effect, interval and p-values
            assert getattr(mine.comparison, name) == getattr(theirs.comparison, name), name
    assert analysis.comparisons["estimate"].tolist() == [c.comparison.diff for c in builtin.cells[1:]]
    capsys.readouterr()
    assert (
        cli(
            [
                "analyze",
                str(csv),
                "--metric",
                "test_error",
                "--by",
                "activation",
                "--baseline",
                "relu",
                "--pair-by",
                "seed",
                "--out",
                str(tmp_path / "report"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert analysis.verdict in " ".join(printed.split()) and (tmp_path / "report" / "report.html").is_file()


def scores(goal_bonus: float = 2.0) -> list[dict]:
    """accuracy per (activation, seed): gelu is better by ``goal_bonus`` give or take the seed noise."""
    noise = [0.0, 3.1, -2.2, 1.7, -0.5]  # shared by the two cells of a seed
    rows = []
    for seed, e in enumerate(noise):
        rows.append({"activation": "relu", "seed": seed, "accuracy": 90.0 + e})
        rows.append({"activation": "gelu", "seed": seed, "accuracy": 90.0 + goal_bonus + e + 0.1 * seed})
    return rows


def test_goal_max_verdicts_follow_the_metric_direction_and_pairing_is_optional() -> None:
    higher = rectlab.analyze(scores(), metric="accuracy", by="activation", baseline="relu", goal="max")
    (row,) = higher.comparisons.to_dict("records")
    assert row["verdict"] == "better" and row["estimate"] > 0 and row["ci_low"] > 0 and row["test"] == "paired t"
    lower = rectlab.analyze(scores(), metric="accuracy", by="activation", baseline="relu", goal="min")
    (flipped,) = lower.comparisons.to_dict("records")
    assert flipped["verdict"] == "worse" and flipped["estimate"] == row["estimate"] and flipped["p"] == row["p"]
    unpaired = rectlab.analyze(scores(), metric="accuracy", by="activation", baseline="relu", goal="max", pair_by=None)
    assert unpaired.cells[1].comparison.paired is False
    assert unpaired.comparisons["p"].iloc[0] > row["p"]  # pairing by seed removes the shared noise


def test_analyze_errors_say_what_is_wrong() -> None:
    with pytest.raises(AnalysisError, match="no column 'loss'; the table's columns: activation, seed, accuracy"):
        rectlab.analyze(scores(), metric="loss", by="activation", baseline="relu")
    with pytest.raises(AnalysisError, match="baseline activation='elu' is not in the table; its values: relu, gelu"):
        rectlab.analyze(scores(), metric="accuracy", by="activation", baseline="elu")
    with pytest.raises(AnalysisError, match="two rows for activation=relu, seed=0"):
        rectlab.analyze(scores() + scores()[:1], metric="accuracy", by="activation", baseline="relu")
    numeric = [{**r, "lr": 0.1 if r["activation"] == "relu" else 0.05} for r in scores()]
    assert rectlab.analyze(numeric, metric="accuracy", by="lr", baseline="0.1").cells[0].label == "0.1"


def test_cli_analyze_reports_a_bad_column_in_one_line(tmp_path, capsys) -> None:
    csv = tmp_path / "r.csv"
    csv.write_text("activation,seed,acc\nrelu,0,1\ngelu,0,2\n")
    assert cli(["analyze", str(csv), "--metric", "error", "--by", "activation", "--baseline", "relu"]) == 2
    assert "rectlab: error: no column 'error'" in capsys.readouterr().err


# -- the aggregates, against the definitions ----------------------------------------------------------------------


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == 4.5  # (3 + 4 + 5 + 6) / 4
    assert iqm([100, 1, 3, 2, 4]) == 3.0  # n = 5: int(1.25) = 1 cut from each end -> (2 + 3 + 4) / 3
    from scipy import stats

    x = np.random.default_rng(0).normal(size=(7, 3))
    assert iqm(x) == pytest.approx(stats.trim_mean(x.ravel(), 0.25))


def test_probability_of_improvement_counts_pairs_and_halves_ties() -> None:
    # task 1: pairs (1,2) (1,3) (2,2) (2,3): X wins none, ties one -> 0.5 / 4; task 2: 5 > 4 -> 1
    assert probability_of_improvement([[1, 2]], [[2, 3]]) == 0.125
    assert probability_of_improvement([[1, 2]], [[2, 3]], higher_is_better=False) == 0.875
    assert probability_of_improvement([[1, 2], [5]], [[2, 3], [4]]) == (0.125 + 1.0) / 2
    assert probability_of_improvement([[1, 2]], [[1, 2]]) == 0.5


def test_performance_profile_is_the_fraction_of_runs_past_tau() -> None:
    tasks = [[1, 2], [3, 4]]
    assert performance_profile(tasks, [0, 1.5, 3.5]).tolist() == [1.0, 0.75, 0.25]
    assert performance_profile(tasks, [0, 1.5, 3.5], higher_is_better=False).tolist() == [0.0, 0.25, 0.75]


def test_stratified_bootstrap_resamples_within_tasks() -> None:
    groups = [[1.0, 1.0, 1.0], [0.0, 10.0, 20.0, 30.0]]
    sizes = stratified_bootstrap(lambda g: [len(t) for t in g], groups, n_resamples=50)
    assert [list(v) for v in sizes] == [[3, 4]] * 3  # every task keeps its number of runs
    first = stratified_bootstrap(lambda g: float(np.mean(g[0])), groups, n_resamples=200)
    assert first == (1.0, 1.0, 1.0)  # task 1's runs never mix with task 2's
    est, low, high = stratified_bootstrap(lambda g: float(np.mean(g[1])), groups, n_resamples=2000)
    assert est == 15.0 and 0.0 <= low < est < high <= 30.0


def test_across_tasks_aggregates_two_datasets(tmp_path) -> None:
    rows = []
    for dataset, base, gain in (("a", 10.0, 1.0), ("b", 40.0, 4.0)):
        for seed, e in enumerate((0.0, 0.5, -0.5, 0.25)):
            rows.append({"dataset": dataset, "activation": "relu", "seed": seed, "error": base + e})
            rows.append({"dataset": dataset, "activation": "prelu", "seed": seed, "error": base - gain + e})
    analysis = rectlab.analyze(rows, metric="error", by="activation", baseline="relu", tasks=["dataset"])
    agg = analysis.across_tasks
    assert agg is not None and agg.tasks == ["a", "b"] and agg.baseline == "relu"
    prelu = next(a for a in agg.algorithms if a.label == "prelu")
    normalized = [
        (base - gain + e) / (base + np.mean((0.0, 0.5, -0.5, 0.25)))
        for base, gain in ((10.0, 1.0), (40.0, 4.0))
        for e in (0.0, 0.5, -0.5, 0.25)
    ]
    assert prelu.iqm.estimate == pytest.approx(iqm(normalized))
    assert prelu.iqm.high < 1.0  # about 10% fewer errors on both tasks
    # P(a prelu run has a lower error than a relu run on the same task), by hand from the definition
    noise = (0.0, 0.5, -0.5, 0.25)
    tasks = [([9 + e for e in noise], [10 + e for e in noise]), ([36 + e for e in noise], [40 + e for e in noise])]
    by_hand = np.mean(
        [np.mean([[(p < r) + 0.5 * (p == r) for r in relu] for p in prelu_runs]) for prelu_runs, relu in tasks]
    )
    assert prelu.improvement.estimate == pytest.approx(by_hand) and prelu.improvement.estimate > 0.9
    report = analysis.report(tmp_path / "agg.html")
    text = report.markdown.read_text()
    assert "## Across tasks" in text and "Agarwal et al. 2021" in text
    assert (tmp_path / "plots" / "profiles.png").is_file()
    single = rectlab.analyze(
        [r for r in rows if r["dataset"] == "a"], metric="error", by="activation", baseline="relu", tasks=["dataset"]
    )
    assert single.across_tasks is None and across_tasks(single.results) is None
    assert math.isfinite(prelu.improvement.low)
