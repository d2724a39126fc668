"""``activation-search``: search unary/binary compositions scored on a child network, then check that Swish is among
the winners and beats ReLU (Ramachandran, Zoph & Le 2017, arXiv 1710.05941). A custom runner over
[`rectlab.search`][rectlab.search]; its final comparison is an ordinary study part."""

from __future__ import annotations

import math

import numpy as np
import torch

from ... import activations
from ...report import collect
from ...report.plots import points_with_ci, pyplot, save_figure
from ...search import PREFIX, SearchResult, load_config, run_search
from ...search.ops import BINARY, UNARY
from ..core import Analysis, ClaimCheck, Context, Part, PartRun, Reproduction, Table, studies_dir
from ..evidence import direction_check, final, find_cell, sample

MARGIN = 0.5  # test-error points: the size of the child-network gains the paper's top functions show over ReLU
CHANCE = 90.0  # a diverged run counts as chance-level test error (10 classes)


def _ops_text(ops: list[str] | tuple[str, ...] | None) -> str:
    if not ops:
        return ""
    units = [ops[i:i + 3] for i in range(0, len(ops), 3)]
    return " | ".join(f"{BINARY[b].paper} of ({UNARY[u1].paper}, {UNARY[u2].paper})" for u1, u2, b in units)


def _chance(n: int, m: int, k: int) -> float:
    """P(at least one of m marked items among the first k of n) under a random order."""
    if m == 0 or n == 0:
        return 0.0
    return 1.0 - math.comb(n - m, min(k, n)) / math.comb(n, min(k, n)) if n - m >= k else 1.0


def _rediscovery(result: SearchResult) -> tuple[ClaimCheck, str | None]:
    k = len(result.winners)
    swish = [t for t in result.ranking if result.is_swish(t)]
    claim = f"the search rediscovers x·σ(βx) (or an equivalent) among its top {k} candidates"
    rule = ("rule: a candidate counts as Swish when, at initialization, it is a·x·σ(b·x) with a, b > 0 (relative RMS "
            "distance < 1e-3 on [-6, 6]); reproduced when one is among the winners, not reproduced when the space "
            "held one but none won, inconclusive when the space held none")
    if not swish:
        return ClaimCheck(claim, "inconclusive", f"no Swish-equivalent candidate was trained (the space as screened "
                                                 f"holds none); {rule}"), None
    ranks = ", ".join(f"{t} rank {result.rank_of(t)}" for t in swish)
    chance = _chance(len(result.ranking), len(swish), k)
    evidence = (f"{len(swish)} Swish-equivalent candidate(s) among {len(result.ranking)} ranked: {ranks}; a random "
                f"ranking would put one in the top {k} with probability {chance:.0%}")
    won = [t for t in result.winners if result.is_swish(t)]
    verdict = "reproduced" if won else "not reproduced"
    return ClaimCheck(claim, verdict, f"{evidence}; {rule}", n=len(result.ranking), evidence=evidence), (
        won[0] if won else None)


def _rung_plot(result: SearchResult, path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for rung in result.rungs:
        xs = np.full(len(rung.candidates), rung.index, dtype=float)
        ys = np.array([rung.scores.get(t, np.nan) for t in rung.candidates])
        jitter = (np.random.default_rng(rung.index).random(len(xs)) - 0.5) * 0.3
        ax.scatter(xs + jitter, ys, s=10, color="tab:blue", alpha=0.5)
        marked = [i for i, t in enumerate(rung.candidates) if result.is_swish(t)]
        ax.scatter(xs[marked] + jitter[marked], ys[marked], s=40, facecolor="none", edgecolor="tab:red",
                   label="Swish-equivalent" if rung.index == 1 else None)
    ax.set(xlabel="rung (budget grows to the right)", ylabel="validation error (%)", yscale="log",
           title=f"Successive halving: {len(result.rungs[0].candidates)} candidates, scores per rung")
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
            ax.plot(x.numpy(), module(x).numpy(), label=name.removeprefix(PREFIX), lw=1.3,
                    ls="--" if not name.startswith(PREFIX) else "-")
    ax.set(xlabel="x", ylabel="f(x) at initialization (beta = 1)", ylim=(-2.5, 4.5), title="Winners and baselines")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def run(ctx: Context) -> Analysis:
    ex = ctx.execution
    config = load_config(studies_dir(ex.get("studies")) / "activation-search.toml", ctx.scale)
    result = run_search(config, ctx.out, executor=ex.get("executor", "local"), workers=ex.get("workers", 1),
                        device=ex.get("device"), data_dir=ex.get("data_dir"), progress=ex.get("progress", True),
                        console=ex.get("console"))
    if result.final_dir is None:
        raise RuntimeError("the activation search ended without its final comparison (no winners to compare)")
    res = collect(result.final_dir)
    ctx.parts["final"] = PartRun(Part("final", "activation-search.toml", "winners vs the baselines on the test split"),
                                 result.final_spec, result.final_dir, res)
    a = Analysis()
    check, swish_winner = _rediscovery(result)
    a.checks.append(check)
    err = final("test_error")
    relu = sample(find_cell(res, activation="relu"), err, label="ReLU", diverged=CHANCE)
    swish_name = PREFIX + swish_winner if swish_winner else "swish"
    a.checks.append(direction_check(
        f"the rediscovered Swish ({swish_name.removeprefix(PREFIX)}) beats ReLU on the child network" if swish_winner
        else "Swish (the registered x·σ(x): the search did not rank one among its winners) beats ReLU on the child "
             "network", relu, sample(find_cell(res, activation=swish_name), err, diverged=CHANCE), expect="lower",
        margin=MARGIN,
        what="Swish − ReLU test error", unit=" points", gate=True))
    for rank, w in enumerate(result.winners, 1):
        if PREFIX + w == swish_name:
            continue
        a.checks.append(direction_check(
            f"winner {rank} ({w}) beats ReLU on the child network", relu,
            sample(find_cell(res, activation=PREFIX + w), err, diverged=CHANCE), expect="lower", margin=MARGIN,
            what="winner − ReLU test error", unit=" points", gate=True, primary=False))
    if swish_name != "swish" and "swish" in result.config.baselines:
        a.checks.append(direction_check(
            "the registered Swish (x·σ(x)) beats ReLU on the child network", relu,
            sample(find_cell(res, activation="swish"), err, diverged=CHANCE), expect="lower", margin=MARGIN,
            what="swish − ReLU test error", unit=" points", gate=True, primary=False))
    _tables(a, result)
    _rung_plot(result, ctx.plots_dir / "search_rungs.png")
    a.plots["Validation error of every candidate at each rung of successive halving (red: Swish-equivalent)"] = (
        ctx.plots_dir / "search_rungs.png")
    _shape_plot(result, ctx.plots_dir / "search_winners.png")
    a.plots["The winners and the baselines as functions (at initialization)"] = ctx.plots_dir / "search_winners.png"
    relu_by_seed = relu.values
    diffs = {}
    for c in res.cells:
        if c.values.get("activation") != "relu":
            values = sample(c, err, diverged=CHANCE).values
            diffs[c.label.removeprefix(PREFIX)] = [v - relu_by_seed[s] for s, v in values.items() if s in relu_by_seed]
    a.plots["Test error difference to ReLU on the child network (same seed; negative: better than ReLU)"] = (
        points_with_ci(diffs, ctx.plots_dir / "search_final.png", title="Final comparison: test error − ReLU's",
                       xlabel="difference in test error (points)", reference=0.0))
    a.notes.append(f"Search: {result.config.space.describe()}; strategy {result.config.strategy} (eta = "
                   f"{result.config.eta}); {result.screened.seen} candidates examined, {len(result.screened.accepted)} "
                   f"distinct trained, in {result.seconds:.0f} s including the final comparison. Use a winner by name: "
                   f"--activations search:{ctx.out}/1 or search:<expression>.")
    return a


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0].split(" e.g.")[0].split(" out of range")[0].replace("He gain", "He gain out of range")


def _tables(a: Analysis, result: SearchResult) -> None:
    kinds: dict[str, int] = {}
    for reason in result.screened.rejected.values():
        kind = _reason_kind(reason)
        kinds[kind] = kinds.get(kind, 0) + 1
    merged = sum(map(len, result.screened.aliases.values()))
    rows = [["candidates examined", str(result.screened.seen)], ["distinct candidates trained",
                                                                  str(len(result.screened.accepted))],
            ["merged (numerically equal to a kept one)", str(merged)]]
    rows += [[f"rejected: {k}", str(v)] for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])]
    a.tables.append(Table("Screening before training", ["", "count"], rows,
                          note="Rejected: non-finite values or derivative on a probe grid of [-8, 8], constant, no "
                               "usable He gain, or activations exploding (x1e4) in an 8-layer He-initialized MLP. "
                               "Merged: equal values on the grid at beta = 1 and at beta = 0.7."))
    ops = {c.text: c.ops for c in result.screened.accepted}
    rows = []
    for rank, t in enumerate(result.ranking[:20], 1):
        scores = [f"{r.scores[t]:.2f}" if t in r.scores else "–" for r in result.rungs]
        rows.append([str(rank), t, _ops_text(ops.get(t)), *scores, "yes" if result.is_swish(t) else ""])
    a.tables.append(Table(
        f"Search ranking (first 20 of {len(result.ranking)})",
        ["rank", "expression", "core unit(s)", *[f"rung {r.index} val. error (%)" for r in result.rungs], "Swish"],
        rows, note="Rung budgets: " + "; ".join(
            f"rung {r.index}: {len(r.candidates)} candidates x {r.seeds} seed(s), "
            + ", ".join(f"{k}={v}" for k, v in r.budget.items()) + f" ({r.seconds:.0f} s)" for r in result.rungs)
        + f". Validation split: {result.config.validation}. A failed or diverged run scores 100%."))


REPRODUCTION = Reproduction(
    name="activation-search",
    summary="search compositions of the paper's unary/binary functions on a child network: is Swish among the "
            "winners, and does it beat ReLU?",
    paper="Ramachandran, Zoph & Le 2017, Searching for Activation Functions (arXiv 1710.05941)",
    claim="Searching combinations of unary and binary functions (core units b(u1(x), u2(x))), scored by training a "
          "child network, finds x·σ(βx) (Swish) among the best activation functions, and it beats ReLU on the child "
          "network (ResNet-20 on CIFAR-10).",
    published=(("search on ResNet-20 / CIFAR-10", "top functions include x·σ(βx), max(x, σ(x)), cos(x) − x, "
                                                  "min(x, sin(x)), (tan⁻¹(x))² − x, max(x, tanh(x))"),
               ("x·σ(βx) vs ReLU on the child network", "better than ReLU (the best discovered function)")),
    runner=run,
    notes="quick scale: 8 of the paper's 25 unary and 4 of its 10 binary functions, one core unit (172 raw "
          "candidates, all trained at the first rung), an MLP child on a Fashion-MNIST validation split "
          "(fashion-mnist-val) with successive halving instead of the paper's ResNet-20 on CIFAR-10 with exhaustive "
          "and RL-controller search; winners compared on the Fashion-MNIST test split with 8 seeds. Every beta is "
          "learnable and starts at 1. The RL controller is not implemented.",
)
