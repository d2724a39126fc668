"""Across tasks: the aggregate view of Agarwal et al. 2021 when a study spans several datasets or models.

"Deep Reinforcement Learning at the Edge of the Statistical Precipice" (Agarwal, Schwarzer, Castro, Courville,
Bellemare; NeurIPS 2021, arXiv 2108.13264) recommends, for a few runs on each of several tasks:

* the **interquartile mean** (IQM) of the scores of all runs on all tasks: the mean of the middle 50%
  (`iqm`, the 25% trimmed mean of ``scipy.stats.trim_mean``), robust to outlier runs yet less noisy than
  the median;
* **stratified bootstrap** confidence intervals: runs are resampled with replacement within each task
  (`stratified_bootstrap`), percentile intervals;
* the **average probability of improvement** ``P(X > Y) = 1/M sum_m P(X_m > Y_m)``, where ``P(X_m > Y_m)`` is
  the Mann-Whitney U statistic over the runs of task m divided by ``N K`` (ties count one half;
  `probability_of_improvement`); it needs no normalization across tasks;
* **performance profiles**: the fraction of runs (over all tasks) whose score passes a threshold tau, as a
  function of tau (`performance_profile`), with bootstrap bands.

The IQM and the profiles pool scores of different tasks, so rectlab normalizes each task by its baseline:
a run's score is its metric divided by the baseline's mean on the same task (1 = the baseline; for an error,
0.9 = 10% fewer errors). For a lower-is-better metric "improvement" means a lower value and the profile counts
runs *below* tau. rectlab implements these definitions with NumPy (the ``rliable`` package's imports do not
work with current pandas); the tests check them on hand-computed cases.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .collect import StudyResults
from .plots import pyplot, save_figure

__all__ = [
    "AcrossTasks",
    "AlgorithmAggregate",
    "Interval",
    "across_tasks",
    "aggregate_rows",
    "iqm",
    "performance_profile",
    "plot_profiles",
    "probability_of_improvement",
    "stratified_bootstrap",
]

N_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval."""

    estimate: float
    low: float
    high: float


def iqm(scores: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the scores left after cutting ``int(0.25 n)`` from each end (the 25%
    trimmed mean of ``scipy.stats.trim_mean(scores, 0.25)``, over every run of every task pooled)."""
    x = np.sort(np.asarray(scores, dtype=float).ravel())
    if x.size == 0:
        return math.nan
    cut = int(0.25 * x.size)
    return float(x[cut : x.size - cut].mean())


def probability_of_improvement(
    x_tasks: Sequence[Sequence[float]], y_tasks: Sequence[Sequence[float]], *, higher_is_better: bool = True
) -> float:
    """Average probability that a run of X beats a run of Y on the same task (Agarwal et al. 2021, eq. in sec. 4.2).

    Args:
        x_tasks, y_tasks: per task, the scores of X's runs and of Y's runs (the same tasks, in the same order).
        higher_is_better: False for errors and losses (a lower score beats a higher one).

    Returns:
        ``1/M sum_m 1/(N_m K_m) sum_i sum_j S(x_mi, y_mj)`` with ``S = 1`` when x beats y, ``1/2`` on a tie.
    """
    if len(x_tasks) != len(y_tasks) or not x_tasks:
        raise InputError("probability_of_improvement needs the same (non-empty) list of tasks for X and Y")
    per_task = []
    for xs, ys in zip(x_tasks, y_tasks):
        x, y = np.asarray(xs, dtype=float)[:, None], np.asarray(ys, dtype=float)[None, :]
        wins = (x > y) if higher_is_better else (x < y)
        per_task.append(float(np.mean(wins + 0.5 * (x == y))))
    return float(np.mean(per_task))


def performance_profile(
    tasks: Sequence[Sequence[float]], taus: Sequence[float] | np.ndarray, *, higher_is_better: bool = True
) -> np.ndarray:
    """The score distribution ``F(tau)``: the fraction of all runs (every task pooled) with a score above tau
    (below tau when ``higher_is_better`` is False), for each tau."""
    scores = np.concatenate([np.asarray(t, dtype=float).ravel() for t in tasks])
    t = np.asarray(taus, dtype=float)[:, None]
    return np.mean(scores[None, :] > t, axis=1) if higher_is_better else np.mean(scores[None, :] < t, axis=1)


def stratified_bootstrap(
    statistic: Callable[..., Any],
    *groups: Sequence[Sequence[float] | np.ndarray],
    n_resamples: int = N_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[Any, Any, Any]:
    """Percentile bootstrap of ``statistic(*groups)``, resampling runs with replacement within each task.

    Args:
        statistic: called with one list of per-task arrays per group; returns a number or an array.
        groups: each a list of per-task score sequences (an algorithm's runs on each task); every group and
            task is resampled independently (stratified by task, as rliable's ``StratifiedIndependentBootstrap``).
        n_resamples, confidence, seed: the bootstrap's size, level and fixed random seed.

    Returns:
        ``(estimate, low, high)``: the statistic on the data and the percentile interval's bounds.
    """
    rng = np.random.default_rng(seed)
    data = [[np.asarray(t, dtype=float) for t in g] for g in groups]
    estimate = statistic(*data)
    draws = []
    for _ in range(n_resamples):
        draws.append(statistic(*[[t[rng.integers(0, len(t), len(t))] for t in g] for g in data]))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.asarray(draws, dtype=float), [tail, 100 - tail], axis=0)
    return estimate, low, high


@dataclass
class AlgorithmAggregate:
    """One compared value (an activation, say) across every task."""

    label: str
    runs: int
    iqm: Interval | None
    improvement: Interval | None  # P(better than the baseline); None for the baseline itself
    is_baseline: bool = False


@dataclass
class AcrossTasks:
    """The across-task view of a study or an analysis.

    Attributes:
        compared: the keys whose values are compared (the baseline's keys).
        tasks: the labels of the tasks (every combination of the other keys' values).
        baseline: the baseline's label.
        goal: ``"min"`` or ``"max"``.
        algorithms: one `AlgorithmAggregate` per compared value with runs on every task.
        left_out: compared values without runs on every task (not aggregated).
        taus, profiles: the thresholds and, per algorithm, ``(fraction, low, high)`` arrays over them.
        normalized: False when a task's baseline mean is 0 or not finite (then only the probability of
            improvement is given).
    """

    metric: str
    compared: list[str]
    tasks: list[str]
    baseline: str
    goal: str
    algorithms: list[AlgorithmAggregate]
    left_out: list[str] = field(default_factory=list)
    taus: np.ndarray = field(default_factory=lambda: np.zeros(0))
    profiles: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    normalized: bool = True


def _label(values: dict[str, Any]) -> str:
    if len(values) == 1:
        return str(next(iter(values.values())))
    return ", ".join(f"{k}={v}" for k, v in values.items())


def across_tasks(results: StudyResults, *, n_resamples: int = N_RESAMPLES, seed: int = 0) -> AcrossTasks | None:
    """The aggregate view of ``results`` when its cells span two or more tasks, else None.

    The compared keys are the baseline's; every combination of the other keys' values is a task (a dataset,
    a model, ...). Compared values need runs on every task to be aggregated; the baseline too.
    """
    compared = list(results.baseline)
    cells = [c for c in results.cells if c.runs and all(k in c.values for k in compared)]
    if not compared or not cells:
        return None
    scores: dict[str, dict[str, list[float]]] = {}
    algo_values: dict[str, dict[str, Any]] = {}
    task_order: list[str] = []
    for c in cells:
        algo = {k: c.values[k] for k in compared}
        task = {k: v for k, v in c.values.items() if k not in compared}
        a, t = json.dumps(algo, sort_keys=True, default=str), _label(task) if task else "all"
        algo_values.setdefault(a, algo)
        if t not in task_order:
            task_order.append(t)
        scores.setdefault(a, {})[t] = [float(r["final"]) for r in c.runs]
    if len(task_order) < 2:
        return None
    base_key = json.dumps({k: results.baseline[k] for k in compared}, sort_keys=True, default=str)
    complete = [a for a in scores if all(t in scores[a] for t in task_order)]
    left_out = [_label(algo_values[a]) for a in scores if a not in complete]
    if base_key not in complete:
        return None
    higher = results.goal == "max"
    base_means = [float(np.mean(scores[base_key][t])) for t in task_order]
    normalized = all(math.isfinite(m) and m != 0 for m in base_means)
    per_task = {a: [np.asarray(scores[a][t]) for t in task_order] for a in complete}
    norm = {a: [x / m for x, m in zip(per_task[a], base_means)] for a in complete} if normalized else {}
    everything = np.concatenate([x for a in norm for x in norm[a]]) if normalized else np.zeros(0)
    taus = np.linspace(everything.min(), everything.max(), 41) if everything.size else np.zeros(0)
    algorithms: list[AlgorithmAggregate] = []
    profiles: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for i, a in enumerate(complete):
        label = _label(algo_values[a])
        interval = None
        if normalized:
            est, lo, hi = stratified_bootstrap(
                lambda g: iqm(np.concatenate(g)), norm[a], n_resamples=n_resamples, seed=seed + i
            )
            interval = Interval(float(est), float(lo), float(hi))
            profiles[label] = stratified_bootstrap(
                lambda g: performance_profile(g, taus, higher_is_better=higher),
                norm[a],
                n_resamples=n_resamples,
                seed=seed + i,
            )
        improvement = None
        if a != base_key:
            est, lo, hi = stratified_bootstrap(
                lambda x, y: probability_of_improvement(x, y, higher_is_better=higher),
                per_task[a],
                per_task[base_key],
                n_resamples=n_resamples,
                seed=seed + i,
            )
            improvement = Interval(float(est), float(lo), float(hi))
        algorithms.append(
            AlgorithmAggregate(label, sum(len(x) for x in per_task[a]), interval, improvement, a == base_key)
        )
    return AcrossTasks(
        results.metric,
        compared,
        task_order,
        _label(algo_values[base_key]),
        results.goal,
        algorithms,
        left_out,
        taus,
        profiles,
        normalized,
    )


def _interval(i: Interval | None, digits: int = 3) -> str:
    if i is None:
        return "–"
    return f"{i.estimate:.{digits}f} [{i.low:.{digits}f}, {i.high:.{digits}f}]"


def aggregate_headers(agg: AcrossTasks) -> list[str]:
    return ["cell", "runs", f"IQM of {agg.metric} / baseline [95% CI]", f"P(better than {agg.baseline}) [95% CI]"]


def aggregate_rows(agg: AcrossTasks) -> list[list[str]]:
    """The table rows: per compared value, its runs, IQM of the normalized metric and probability of improvement."""
    return [
        [
            a.label + (" (baseline)" if a.is_baseline else ""),
            str(a.runs),
            _interval(a.iqm),
            "baseline" if a.is_baseline else _interval(a.improvement, 2),
        ]
        for a in agg.algorithms
    ]


def aggregate_sentences(agg: AcrossTasks) -> list[str]:
    """How to read the table: the tasks, the normalization, the method; compared values left out."""
    better = "higher" if agg.goal == "max" else "lower"
    out = [
        f"Across {len(agg.tasks)} tasks ({'; '.join(agg.tasks)}), after Agarwal et al. 2021: the interquartile "
        f"mean (IQM) of every run's {agg.metric} divided by the baseline's mean on its task (1 = the baseline; "
        f"{better} is better), and the probability that a run beats a baseline run on the same task, averaged "
        f"over tasks (0.5 = no difference); 95% stratified-bootstrap intervals (runs resampled within tasks)."
    ]
    if not agg.normalized:
        out.append(
            "The baseline's mean is 0 (or not finite) on a task, so scores cannot be normalized by it: only "
            "the probability of improvement is given."
        )
    if agg.left_out:
        out.append(f"Not aggregated (no runs on every task): {', '.join(agg.left_out)}.")
    return out


def plot_profiles(agg: AcrossTasks, path: Path) -> Path | None:
    """The performance profiles (fraction of runs past each threshold, with 95% bootstrap bands); None without
    normalized scores."""
    if not agg.profiles or not agg.taus.size:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label, (frac, low, high) in agg.profiles.items():
        (line,) = ax.plot(agg.taus, frac, lw=1.8, label=label)
        ax.fill_between(agg.taus, low, high, color=line.get_color(), alpha=0.18, lw=0)
    ax.axvline(1.0, color="gray", ls="--", lw=0.8)
    side = ">" if agg.goal == "max" else "<"
    ax.set(
        title="Performance profiles across tasks (band: 95% bootstrap CI)",
        xlabel=f"tau ({agg.metric} / baseline mean on the task)",
        ylabel=f"fraction of runs with score {side} tau",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
