"""``init-depth``: plain nets without BatchNorm at 14, 22 and 30 layers with He vs "Xavier" initialization, ReLU
(He et al. 2015, arXiv 1502.01852, section 2.2 and Figures 2–3)."""

from __future__ import annotations

import math

from ...report.collect import STALL_TOL, stalled
from ...report.plots import curves
from ..core import Analysis, ClaimCheck, Context, Part, Reproduction, Table
from ..evidence import (
    direction_check,
    final,
    metric_curves,
    per_seed,
    rate_check,
    sample,
    steps_per_epoch,
    steps_to,
    summary_text,
)

INITS = {"he": "He", "xavier-fan-in": "Xavier"}


def _depth(cell) -> int:
    return int(cell.values["model_kwargs"]["depth"])


def _cell(results, depth: int, init: str, activation: str = "relu"):
    for c in results.cells:
        if _depth(c) == depth and c.values.get("init") == init and c.values.get("activation", activation) == activation:
            return c
    return None


def _cells(res, stall, depth: int, init: str) -> list:
    """The cells of one setting: the curves part's, plus the stall part's more seeds when it ran."""
    cells = [_cell(res, depth, init)]
    if stall is not None:
        cells.append(_cell(stall, depth, init))
    return [c for c in cells if c is not None]


def _count(cells: list, hit) -> tuple[int, int, list[int], int]:
    """(runs where ``hit(run)``, runs, diverged seeds, planned) over the cells; a diverged run is not a hit."""
    runs = [r for c in cells for r in c.runs]
    diverged = [int(r["seed"]) for c in cells for r in c.diverged]
    return sum(1 for r in runs if hit(r)), len(runs) + len(diverged), diverged, sum(c.planned for c in cells)


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    part = ctx.parts["curves"]
    res = part.results
    stall_part = ctx.parts.get("stall")
    stall_res = stall_part.results if stall_part is not None else None
    if not res.cells:
        a.checks.append(ClaimCheck("deep plain nets train with He init", "inconclusive", "no finished runs"))
        return a
    classes = 100 if "100" in part.spec.base.dataset else 10
    chance = math.log(classes)
    converged_at = ctx.option("converged_loss") * chance
    started_at = ctx.option("started_loss") * chance
    threshold, level = ctx.option("rate_threshold"), ctx.option("rate_level")
    per = steps_per_epoch({"config": part.spec.base.to_dict()}) or 1
    started = steps_to("train_loss", started_at)
    depths = sorted({_depth(c) for c in res.cells})

    def learned(run) -> bool:
        loss = final("train_loss")(run)
        return math.isfinite(loss) and loss < converged_at

    def converges(depth: int, init: str, claim: str) -> ClaimCheck:
        cells = _cells(res, stall_res if (depth, init) == (30, "xavier-fan-in") else None, depth, init)
        ok, n, diverged, planned = _count(cells, learned)
        note = f"{len(diverged)} run(s) diverged and count as not converged" if diverged else ""
        return rate_check(
            claim,
            ok,
            n,
            threshold=threshold,
            level=level,
            notes=note,
            n_planned=planned,
            what=f"{INITS[init]} runs ending with a training loss below {converged_at:.2f}",
        )

    if 22 in depths:
        for init in INITS:
            a.checks.append(
                converges(22, init, f"22 layers: {INITS[init]} init converges (paper, Figure 2: both inits converge)")
            )
        never = float((part.spec.base.epochs + 1) * per)
        a.checks.append(
            direction_check(
                "22 layers: He init starts reducing the loss earlier than Xavier (paper, Figure 2)",
                sample(_cell(res, 22, "xavier-fan-in"), started, label="Xavier", diverged=never),
                sample(_cell(res, 22, "he"), started, label="He", diverged=never),
                expect="lower",
                margin=float(ctx.option("start_margin_epochs") * per),
                what=f"He − Xavier optimizer steps until the training loss is below {started_at:.2f}",
                unit=" steps",
                digits=0,
            )
        )
    if 30 in depths:
        a.checks.append(converges(30, "he", "30 layers: He init converges (paper, Figure 3)"))
        cells = _cells(res, stall_res, 30, "xavier-fan-in")
        hits, n, diverged, planned = _count(cells, stalled)
        note = f"{len(diverged)} run(s) diverged and count as not stalled" if diverged else ""
        a.checks.append(
            rate_check(
                "30 layers: Xavier init completely stalls: the training loss stays at chance level (paper, Figure 3: "
                "'completely stalls ... does not converge even given more epochs')",
                hits,
                n,
                threshold=threshold,
                level=level,
                notes=note,
                n_planned=planned,
                what=f"Xavier runs stalled (training loss within {STALL_TOL:.0%} of ln {classes} at every epoch)",
            )
        )
    if 30 in depths and 14 in depths:
        err = final("test_error")
        a.checks.append(
            direction_check(
                "30 layers ends worse than 14 layers (He init)",
                sample(_cell(res, 14, "he"), err, label="14 layers"),
                sample(_cell(res, 30, "he"), err, label="30 layers", diverged=100.0 * (1 - 1 / classes)),
                expect="higher",
                margin=ctx.option("depth_margin"),
                what="30 − 14 layers test error",
                unit=" points",
                primary=False,
                gate=True,
            )
        )
    a.tables.append(_table(res, stall_res, depths, converged_at, started))
    series = {
        f"{_depth(c)} layers, {c.values.get('activation', 'relu')}, {INITS.get(c.values['init'])}": metric_curves(
            c, "train_loss"
        )
        for c in res.cells
    }
    panels = {f"{d} layers": [k for k in series if k.startswith(f"{d} layers")] for d in depths}
    a.plots["Training loss per epoch, one panel per depth (band: min–max over seeds)"] = curves(
        series,
        ctx.plots_dir / "loss_by_depth.png",
        title="Training loss: He vs Xavier init by depth",
        ylabel="training loss",
        panels=panels,
        hline=chance,
        hline_label=f"chance ln {classes}",
    )
    a.notes.append(
        f"Converged: final training loss below {converged_at:.2f} (half the chance level ln {classes} = "
        f"{chance:.2f}); stalled: the training loss within {STALL_TOL:.0%} of ln {classes} at every epoch "
        "(never learned; a run that learns a little but ends above the cut is neither); started: the "
        f"first epoch end with a training loss below {started_at:.2f} (90% of chance), counted in "
        f"optimizer steps ({per} per epoch). Diverged runs count as not converged, not stalled and as "
        "never started."
    )
    return a


def _table(res, stall_res, depths: list[int], converged_at: float, started) -> Table:
    rows = []
    for depth in depths:
        for cell in [c for c in res.cells if _depth(c) == depth]:
            cells = _cells(
                res,
                stall_res if (depth, cell.values["init"]) == (30, "xavier-fan-in") else None,
                depth,
                cell.values["init"],
            )
            ok, n, _, _ = _count(cells, lambda r: final("train_loss")(r) < converged_at)
            hits = sum(len(c.stalled) for c in cells)
            runs = [r for c in cells for r in c.runs]
            rows.append(
                [
                    str(depth),
                    cell.values.get("activation", "relu"),
                    INITS.get(cell.values["init"], ""),
                    summary_text(list(per_seed(cell, started).values()), 0),
                    f"{ok}/{n}",
                    f"{hits}/{n}",
                    summary_text([final("train_loss")(r) for r in runs], 3),
                    summary_text([final("test_error")(r) for r in runs]),
                    str(sum(len(c.diverged) for c in cells)),
                ]
            )
    return Table(
        "Convergence per depth and initialization (the 30-layer Xavier row includes the stall part's seeds)",
        [
            "depth",
            "activation",
            "init",
            "steps until started",
            "converged",
            "stalled",
            "final train loss",
            "final test error (%)",
            "diverged",
        ],
        rows,
    )


REPRODUCTION = Reproduction(
    name="init-depth",
    summary="plain nets without BN at 14/22/30 layers: He vs Xavier (std sqrt(1/n)) init, ReLU, time to learn",
    spec="init-depth.toml",
    parts=(
        Part("curves", "init-depth.toml", "depth x init on plain nets without BN"),
        Part("stall", "init-depth-stall.toml", "more seeds of the 30-layer Xavier cell (second stage)", stage=2),
    ),
    analyze=analyze,
    notes="quick scale: deep plain MLPs (width 64, no BN, no skips; 10k Fashion-MNIST images, 15 epochs of SGD) stand "
    "in for the paper's plain ImageNet conv nets: depth in weight layers, ReLU, no normalization and both "
    "inits are kept; convolutions, width and data are not. 'Xavier' is the paper's std sqrt(1/n) (not "
    "Glorot's 2/(fan_in + fan_out)). 'Converges' and 'stalls' are judged within the budget (15 epochs), as "
    "the paper judges them within its plotted epochs; the budget check (twice the epochs) tests the paper's "
    "'does not converge even given more epochs'. Two-stage design: the 30-layer Xavier cell gets 16 more "
    "seeds (the stall part) only when a primary claim is inconclusive after the first 8. ReLU only, as in "
    "the paper's Figures 2–3.",
)
