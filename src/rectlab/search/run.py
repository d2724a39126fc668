"""Run a search: screen the space, score candidates rung by rung through the study machinery, compare the winners.

Every rung is an ordinary study directory (``OUT/rung1/results.db``, ...) whose grid is the candidates'
``search:<expression>`` activation names, trained on the validation split; the final comparison
(``OUT/final``) trains the winners and the baselines with several seeds on the real test split. All
of it runs through [`rectlab.study.run_study`][rectlab.study.run_study], so re-running the same search skips finished
runs, resumes interrupted ones and can use the process or Ray executors (workers rebuild each candidate
from its name). ``OUT/search.json`` records the screening, every score and the winners.

Strategies (Ramachandran et al. 2017 used exhaustive search for small spaces and an RNN controller
trained with reinforcement learning for large ones; the controller is not implemented here):

* ``exhaustive``: every candidate of the space, at the last rung's budget;
* ``random``: ``candidates`` distinct candidates drawn uniformly, at the last rung's budget;
* ``halving``: successive halving (a bandit over training budgets): all candidates (or ``candidates``
  sampled ones) at the first rung's budget, then the best ``1/eta`` at the next rung's, and so on.

A candidate's score is its mean validation error over the rung's seeds; a run that failed or diverged
scores 100% (the worst), and is counted.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import write_text
from ..report import collect, write_report
from ..study import run_study, spec_from_dict
from ..study.store import Store
from .activation import PREFIX
from .config import SearchConfig
from .screen import Screened, screen, swish_fit
from .space import Candidate

__all__ = ["SWISH_TOL", "WORST", "RungResult", "SearchResult", "pool", "run_final", "run_search"]

WORST = 100.0  # the score of a failed or diverged run (test error, %)
SWISH_TOL = 1e-3  # relative RMS distance to a*x*sigmoid(b*x) below which a candidate counts as Swish


@dataclass
class RungResult:
    """One rung: its budget, candidates and scores (mean validation error, %, over its seeds)."""

    index: int
    budget: dict[str, Any]
    seeds: int
    candidates: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    per_seed: dict[str, dict[int, float]] = field(default_factory=dict)
    bad_runs: dict[str, dict[int, str]] = field(default_factory=dict)  # text -> {seed: status}
    seconds: float = 0.0

    def ranked(self) -> list[str]:
        order = {t: i for i, t in enumerate(self.candidates)}
        return sorted(self.candidates, key=lambda t: (self.scores.get(t, WORST), order[t]))


@dataclass
class SearchResult:
    """Everything a search produced (also written to ``OUT/search.json``).

    Attributes:
        out: the output folder.
        config: the search.
        screened: the screening (accepted representatives, merged aliases, rejections).
        rungs: the rungs that ran.
        ranking: every trained candidate, best first (later rungs first, then by score).
        winners: the first ``top_k`` of ``ranking``.
        swish: ``{text: (relative distance to a*x*sigmoid(b*x), a, b)}`` for every trained candidate.
        final_dir, final_spec: the final comparison's study folder and spec (None when it was skipped).
        seconds: wall-clock time.
    """

    out: Path
    config: SearchConfig
    screened: Screened
    rungs: list[RungResult]
    ranking: list[str]
    winners: list[str]
    swish: dict[str, tuple[float, float, float]]
    final_dir: Path | None = None
    final_spec: Any = None
    seconds: float = 0.0

    def is_swish(self, text: str) -> bool:
        """Whether ``text`` is a Swish, ``a * x * sigmoid(b x)`` (a, b > 0), at initialization."""
        return self.swish.get(text, (math.inf,))[0] < SWISH_TOL

    def rank_of(self, text: str) -> int | None:
        return self.ranking.index(text) + 1 if text in self.ranking else None


def _sampled(config: SearchConfig) -> Iterator[Candidate]:
    rng = random.Random(config.seed)
    for _ in range(max(1000, 200 * config.candidates)):  # bounded: a space with few distinct members ends
        yield config.space.sample(rng)


def pool(config: SearchConfig) -> Screened:
    """The screened candidates the strategy starts from (see the module docstring)."""
    if config.strategy == "random" or (config.strategy == "halving" and config.candidates):
        return screen(_sampled(config), limit=config.candidates)
    size = config.space.size()
    if size > config.max_exhaustive:
        raise InputError(
            f"the space has {size:,} candidates, more than max_exhaustive = {config.max_exhaustive:,}; "
            "use strategy 'random' or 'halving' with candidates = N, or a smaller space"
        )
    return screen(config.space.enumerate())


def _scores(store_dir: Path, rung: RungResult) -> None:
    for run in Store(store_dir / "results.db", readonly=True).runs():
        name = run["cell"].get("activation", "")
        text = name[len(PREFIX) :]
        if text not in rung.candidates:
            continue
        seed = int(run["seed"])
        if run["status"] == "done" and run["epochs"]:
            rung.per_seed.setdefault(text, {})[seed] = float(run["epochs"][-1]["test_error"])
        else:
            rung.per_seed.setdefault(text, {})[seed] = WORST
            rung.bad_runs.setdefault(text, {})[seed] = run["status"]
    rung.scores = {t: sum(v.values()) / len(v) for t, v in rung.per_seed.items() if v}


def _study(
    name: str, base: dict[str, Any], activations: list[str], seeds: int, baseline: str, first_seed: int = 0
) -> Any:
    raw = {
        "study": {
            "name": name,
            "seeds": list(range(first_seed, first_seed + seeds)),
            "baseline": {"activation": baseline},
        },
        "base": base,
        "grid": {"activation": activations},
    }
    return spec_from_dict(raw, where=name)


def run_final(config: SearchConfig, names: list[str], out: str | Path, **run_kwargs: Any) -> Any:
    """Train ``names`` (activation names, e.g. winners and baselines) with the final budget and ``config.final_seeds``
    seeds on the test split in ``out`` (a study folder with its report); return the study's spec."""
    spec = _study("search-final", config.final_config(), names, config.final_seeds, config.baselines[0])
    run_study(spec, Path(out), **run_kwargs)
    write_report(Path(out), collect(Path(out)))
    return spec


def _say(console: Any, text: str) -> None:
    if console is not None:
        console.print(text, soft_wrap=True)


def run_search(
    config: SearchConfig,
    out: str | Path,
    *,
    final: bool = True,
    executor: str = "local",
    workers: int = 1,
    device: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    console: Any = None,
    trackers: Sequence[str] = (),
) -> SearchResult:
    """Screen, score and rank the candidates of ``config``; then compare the winners with the baselines.

    Args:
        config: the search (see [`rectlab.search.load_config`][rectlab.search.load_config]).
        out: output folder (``search.json``, ``rung<i>/``, ``final/``).
        final: run the final comparison (``OUT/final``, several seeds on the test split, with its report).
        executor, workers, device, data_dir, progress, console, trackers: as
            [`rectlab.study.run_study`][rectlab.study.run_study].

    Returns:
        A [`SearchResult`][rectlab.search.SearchResult].
    """
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    screened = pool(config)
    if not screened.accepted:
        raise InputError(
            f"no candidate of the space passed screening ({len(screened.rejected)} rejected); widen the space"
        )
    _say(
        console,
        f"search: {config.space.describe()}; {screened.seen} examined, {len(screened.accepted)} distinct "
        f"kept, {len(screened.rejected)} rejected, {sum(map(len, screened.aliases.values()))} merged",
    )
    run_kwargs = {
        "executor": executor,
        "workers": workers,
        "device": device,
        "data_dir": data_dir,
        "progress": progress,
        "console": console,
        "trackers": list(trackers),
    }
    budgets = list(config.rungs) if config.strategy == "halving" else [config.rungs[-1]]
    alive = [c.text for c in screened.accepted]
    rungs: list[RungResult] = []
    for i, (overrides, seeds) in enumerate(budgets, 1):
        if i > 1:
            keep = max(config.top_k, math.ceil(len(alive) / config.eta))
            alive = rungs[-1].ranked()[:keep]
        rung = RungResult(i, dict(overrides), seeds, list(alive))
        _say(
            console,
            f"search rung {i}/{len(budgets)}: {len(alive)} candidates x {seeds} seed(s), {json.dumps(overrides)}",
        )
        start = time.perf_counter()
        # a search's seed also seeds its child networks: search k trains seeds 1000 k, 1000 k + 1, ...
        spec = _study(
            f"search-rung{i}",
            config.run_config(overrides),
            [PREFIX + t for t in alive],
            seeds,
            PREFIX + alive[0],
            first_seed=1000 * config.seed,
        )
        run_study(spec, out / f"rung{i}", **run_kwargs)
        _scores(out / f"rung{i}", rung)
        rung.seconds = time.perf_counter() - start
        rungs.append(rung)
    ranking: list[str] = []
    for rung in reversed(rungs):
        ranking += [t for t in rung.ranked() if t not in ranking]
    winners = ranking[: config.top_k]
    fits = {c.text: swish_fit(c) for c in screened.accepted if c.text in ranking}
    result = SearchResult(out, config, screened, rungs, ranking, winners, fits)
    _write(result)
    if final:
        names = [PREFIX + w for w in winners] + list(config.baselines)
        _say(console, f"search final: {len(names)} activations x {config.final_seeds} seeds")
        result.final_spec = run_final(config, names, out / "final", **run_kwargs)
        result.final_dir = out / "final"
    result.seconds = time.perf_counter() - t0
    _write(result)
    return result


def _write(result: SearchResult) -> None:
    cfg = result.config
    ops = {c.text: list(c.ops) for c in result.screened.accepted}
    record = {
        "space": {
            "unary": list(cfg.space.unary),
            "binary": list(cfg.space.binary),
            "units": list(cfg.space.units),
            "size": cfg.space.size(),
        },
        "strategy": cfg.strategy,
        "eta": cfg.eta,
        "top_k": cfg.top_k,
        "seed": cfg.seed,
        "screening": {
            "examined": result.screened.seen,
            "accepted": len(result.screened.accepted),
            "rejected": result.screened.rejected,
            "merged": result.screened.aliases,
        },
        "rungs": [
            {
                "budget": r.budget,
                "seeds": r.seeds,
                "seconds": round(r.seconds, 1),
                "scores": {t: r.scores.get(t) for t in r.ranked()},
                "per_seed": r.per_seed,
                "bad_runs": r.bad_runs,
            }
            for r in result.rungs
        ],
        "ranking": [
            {
                "rank": i + 1,
                "expression": t,
                "name": PREFIX + t,
                "ops": ops.get(t),
                "swish_distance": _num(result.swish.get(t, (math.inf,))[0]),
            }
            for i, t in enumerate(result.ranking)
        ],
        "winners": [{"rank": i + 1, "expression": t, "name": PREFIX + t} for i, t in enumerate(result.winners)],
        "final": str(result.final_dir) if result.final_dir else None,
        "seconds": round(result.seconds, 1),
    }
    write_text(result.out / "search.json", json.dumps(record, indent=1))


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
