"""``activation-search``: search unary/binary compositions scored on a child network, then check that Swish is among
the winners and beats ReLU (Ramachandran, Zoph & Le 2017, arXiv 1710.05941). A custom runner over
[`rectlab.search`][rectlab.search]; its final comparison is an ordinary study part."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ... import activations
from ...report import collect
from ...report.plots import points_with_ci, pyplot, save_figure
from ...search import PREFIX, SearchResult, load_config, run_final, run_search
from ...search.ops import BINARY, UNARY
from ..core import Analysis, ClaimCheck, Context, Part, PartRun, Reproduction, Table, studies_dir
from ..evidence import direction_check, final, find_cell, rate_check, sample

CHANCE = 90.0  # a diverged run counts as chance-level test error (10 classes)


def _ops_text(ops: list[str] | tuple[str, ...] | None) -> str:
    if not ops:
        return ""
    units = [ops[i : i + 3] for i in range(0, len(ops), 3)]
    return " | ".join(f"{BINARY[b].paper} of ({UNARY[u1].paper}, {UNARY[u2].paper})" for u1, u2, b in units)


def _chance(n: int, m: int, k: int) -> float:
    """P(at least one of m marked items among the first k of n) under a random order."""
    if m == 0 or n == 0:
        return 0.0
    return 1.0 - math.comb(n - m, min(k, n)) / math.comb(n, min(k, n)) if n - m >= k else 1.0


def _best_swish(result: SearchResult) -> tuple[str | None, int | None]:
    """The best-ranked Swish-equivalent candidate of a search and its rank (None when the space held none)."""
    swish = [t for t in result.ranking if result.is_swish(t)]
    return (swish[0], result.rank_of(swish[0])) if swish else (None, None)


def _rediscovery(ctx: Context, results: list[SearchResult]) -> ClaimCheck:
    """A rate claim over the searches: how often a Swish-equivalent is among the top k, against the rate a random
    ranking would give (the threshold) and the paper's "always" (the claimed level)."""
    first = results[0]
    k = len(first.winners)
    claim = (
        f"the search rediscovers x·σ(βx) (or an equivalent) among its top {k} candidates "
        f"({len(results)} searches with different seeds)"
    )
    swish = [t for t in first.ranking if first.is_swish(t)]
    if not swish:
        return ClaimCheck(
            claim, "inconclusive", "no Swish-equivalent candidate was trained (the space as screened holds none)"
        )
    chance = _chance(len(first.ranking), len(swish), k)
    won = sum(any(r.is_swish(t) for t in r.winners) for r in results)
    ranks = [_best_swish(r)[1] for r in results]
    level = float(ctx.option("rate_level"))
    rank_text = ", ".join(f"seed {r.config.seed}: {rank}" for r, rank in zip(results, ranks))
    return rate_check(
        claim,
        won,
        len(results),
        threshold=chance,
        level=max(level, chance + 0.01),
        what=f"searches with a Swish-equivalent among the top {k} (the best one's rank of "
        f"{len(first.ranking)}: {rank_text}; a random ranking: {chance:.0%})",
        n_planned=len(results),
    )


def _rung_plot(result: SearchResult, path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for rung in result.rungs:
        xs = np.full(len(rung.candidates), rung.index, dtype=float)
        ys = np.array([rung.scores.get(t, np.nan) for t in rung.candidates])
        jitter = (np.random.default_rng(rung.index).random(len(xs)) - 0.5) * 0.3
        ax.scatter(xs + jitter, ys, s=10, color="tab:blue", alpha=0.5)
        marked = [i for i, t in enumerate(rung.candidates) if result.is_swish(t)]
        ax.scatter(
            xs[marked] + jitter[marked],
            ys[marked],
            s=40,
            facecolor="none",
            edgecolor="tab:red",
            label="Swish-equivalent" if rung.index == 1 else None,
        )
    ax.set(
        xlabel="rung (budget grows to the right)",
        ylabel="validation error (%)",
        yscale="log",
        title=f"Successive halving: {len(result.rungs[0].candidates)} candidates, scores per rung",
    )
    ax.set_xticks([r.index for r in result.rungs])
    ax.grid(alpha=0.3)
    if any(result.is_swish(t) for t in result.ranking):
        ax.legend()
    save_figure(fig, path)


def _shape_plot(result: SearchResult, path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    x = torch.linspace(-4, 4, 401)
    names = [PREFIX + w for w in result.winners] + list(result.config.baselines)
    with torch.no_grad():
        for name in names:
            module = activations.create(name, channels=1)
            ax.plot(
                x.numpy(),
                module(x).numpy(),
                label=name.removeprefix(PREFIX),
                lw=1.3,
                ls="--" if not name.startswith(PREFIX) else "-",
            )
    ax.set(xlabel="x", ylabel="f(x) at initialization (beta = 1)", ylim=(-2.5, 4.5), title="Winners and baselines")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def run(ctx: Context) -> Analysis:
    ex = ctx.execution
    base = load_config(studies_dir(ex.get("studies")) / "activation-search.toml", ctx.scale)
    seeds = [int(v) for v in ctx.option("search_seeds")]
    margin = float(ctx.option("margin"))
    run_kwargs = {
        "executor": ex.get("executor", "local"),
        "workers": ex.get("workers", 1),
        "device": ex.get("device"),
        "data_dir": ex.get("data_dir"),
        "progress": ex.get("progress", True),
        "console": ex.get("console"),
    }
    results = []
    for seed in seeds:
        config = dataclasses.replace(base, seed=seed)
        ctx.record_setup(f"search{seed}", {"config": repr(config)})
        results.append(run_search(config, ctx.out / f"search{seed}", final=False, **run_kwargs))
    result = results[0]
    # the final comparison: ReLU, Swish, and each search's two best candidates, on the test split
    names = list(base.baselines)
    for r in results:
        names += [PREFIX + w for w in r.winners[:2] if PREFIX + w not in names]
    best = [(_best_swish(r)[0], r) for r in results]
    swish_found = [name for name, r in best if name is not None and name in r.winners]
    if swish_found and PREFIX + swish_found[0] not in names:
        names.append(PREFIX + swish_found[0])
    final_dir = ctx.out / "final"
    spec = run_final(base, names, final_dir, **run_kwargs)
    res = collect(final_dir)
    ctx.parts["final"] = PartRun(
        Part("final", "activation-search.toml", "winners vs the baselines on the test split"), spec, final_dir, res
    )
    ctx.digests["final"] = spec.digest
    a = Analysis(runs={"searches": len(results)}, n_planned={"searches": len(seeds), "final seeds": len(spec.seeds)})
    a.checks.append(_rediscovery(ctx, results))
    err = final("test_error")
    relu = sample(find_cell(res, activation="relu"), err, label="ReLU", diverged=CHANCE)
    swish_name = PREFIX + swish_found[0] if swish_found else "swish"
    a.checks.append(
        direction_check(
            f"the rediscovered Swish ({swish_name.removeprefix(PREFIX)}) beats ReLU on the child network"
            if swish_found
            else "Swish (the registered x·σ(x): no search ranked one among its winners) beats ReLU on the child "
            "network",
            relu,
            sample(find_cell(res, activation=swish_name), err, diverged=CHANCE),
            expect="lower",
            margin=margin,
            what="Swish − ReLU test error",
            unit=" points",
            gate=True,
        )
    )
    for name in names:
        if name in ("relu", swish_name):
            continue
        a.checks.append(
            direction_check(
                f"{name.removeprefix(PREFIX)} beats ReLU on the child network",
                relu,
                sample(find_cell(res, activation=name), err, diverged=CHANCE),
                expect="lower",
                margin=margin,
                what=f"{name.removeprefix(PREFIX)} − ReLU test error",
                unit=" points",
                gate=True,
                primary=False,
            )
        )
    _seed_table(a, results)
    _tables(a, result)
    _rung_plot(result, ctx.plots_dir / "search_rungs.png")
    a.plots[
        f"Validation error of every candidate at each rung of successive halving, search seed {result.config.seed} "
        "(red: Swish-equivalent)"
    ] = ctx.plots_dir / "search_rungs.png"
    _shape_plot(result, ctx.plots_dir / "search_winners.png")
    a.plots["The winners and the baselines as functions (at initialization)"] = ctx.plots_dir / "search_winners.png"
    relu_by_seed = relu.values
    diffs = {}
    for c in res.cells:
        if c.values.get("activation") != "relu":
            values = sample(c, err, diverged=CHANCE).values
            diffs[c.label.removeprefix(PREFIX)] = [v - relu_by_seed[s] for s, v in values.items() if s in relu_by_seed]
    a.plots["Test error difference to ReLU on the child network (same seed; negative: better than ReLU)"] = (
        points_with_ci(
            diffs,
            ctx.plots_dir / "search_final.png",
            title="Final comparison: test error − ReLU's",
            xlabel="difference in test error (points)",
            reference=0.0,
        )
    )
    seconds = sum(r.seconds for r in results)
    a.notes.append(
        f"Search: {result.config.space.describe()}; strategy {result.config.strategy} (eta = "
        f"{result.config.eta}), {len(results)} searches with seeds {', '.join(map(str, seeds))}; "
        f"{result.screened.seen} candidates examined, {len(result.screened.accepted)} distinct trained per "
        f"search, in {seconds:.0f} s. Use a winner by name: --activations search:{ctx.out}/search"
        f"{seeds[0]}/1 or search:<expression>."
    )
    return a


def _seed_table(a: Analysis, results: list[SearchResult]) -> None:
    """Swish's rank and the winners of every search, with the spread of the rank."""
    rows = []
    ranks = []
    for r in results:
        text, rank = _best_swish(r)
        ranks += [rank] if rank is not None else []
        rows.append(
            [
                str(r.config.seed),
                "–" if rank is None else f"{rank} of {len(r.ranking)}",
                text or "–",
                ", ".join(r.winners),
            ]
        )
    note = ""
    if ranks:
        note = (
            f"Rank of the best Swish-equivalent over {len(ranks)} searches: median {float(np.median(ranks)):g}, "
            f"range {min(ranks)}–{max(ranks)}."
        )
    a.tables.append(
        Table(
            "Swish's rank in each search", ["search seed", "best Swish rank", "expression", "winners"], rows, note=note
        )
    )


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0].split(" e.g.")[0].split(" out of range")[0].replace("He gain", "He gain out of range")


def _tables(a: Analysis, result: SearchResult) -> None:
    kinds: dict[str, int] = {}
    for reason in result.screened.rejected.values():
        kind = _reason_kind(reason)
        kinds[kind] = kinds.get(kind, 0) + 1
    merged = sum(map(len, result.screened.aliases.values()))
    rows = [
        ["candidates examined", str(result.screened.seen)],
        ["distinct candidates trained", str(len(result.screened.accepted))],
        ["merged (numerically equal to a kept one)", str(merged)],
    ]
    rows += [[f"rejected: {k}", str(v)] for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])]
    a.tables.append(
        Table(
            "Screening before training",
            ["", "count"],
            rows,
            note="Rejected: non-finite values or derivative on a probe grid of [-8, 8], constant, no "
            "usable He gain, or activations exploding (x1e4) in an 8-layer He-initialized MLP. "
            "Merged: equal values on the grid at beta = 1 and at beta = 0.7.",
        )
    )
    ops = {c.text: c.ops for c in result.screened.accepted}
    rows = []
    for rank, t in enumerate(result.ranking[:20], 1):
        scores = [f"{r.scores[t]:.2f}" if t in r.scores else "–" for r in result.rungs]
        rows.append([str(rank), t, _ops_text(ops.get(t)), *scores, "yes" if result.is_swish(t) else ""])
    a.tables.append(
        Table(
            f"Search ranking (first 20 of {len(result.ranking)})",
            ["rank", "expression", "core unit(s)", *[f"rung {r.index} val. error (%)" for r in result.rungs], "Swish"],
            rows,
            note="Rung budgets: "
            + "; ".join(
                f"rung {r.index}: {len(r.candidates)} candidates x {r.seeds} seed(s), "
                + ", ".join(f"{k}={v}" for k, v in r.budget.items())
                + f" ({r.seconds:.0f} s)"
                for r in result.rungs
            )
            + f". Validation split: {result.config.validation}. A failed or diverged run scores 100%.",
        )
    )


REPRODUCTION = Reproduction(
    name="activation-search",
    summary="search compositions of the paper's unary/binary functions on a child network: is Swish among the "
    "winners, and does it beat ReLU?",
    spec="activation-search.toml",
    runner=run,
    notes="quick scale: 8 of the paper's 25 unary and 4 of its 10 binary functions, one core unit (172 raw "
    "candidates, all trained at the first rung), an MLP child on a Fashion-MNIST validation split "
    "(fashion-mnist-val) with successive halving instead of the paper's ResNet-20 on CIFAR-10 with exhaustive "
    "and RL-controller search; winners compared on the Fashion-MNIST test split with 8 seeds. Every beta is "
    "learnable and starts at 1. The RL controller is not implemented.",
)
