"""``init-depth``: plain nets without BatchNorm at 14, 22 and 30 layers with He vs "Xavier" initialization, ReLU
(He et al. 2015, arXiv 1502.01852, section 2.2 and Figures 2–3)."""

from __future__ import annotations

import math

from ...report.plots import curves
from ..core import Analysis, ClaimCheck, Context, Part, Reproduction, Table
from ..evidence import (
    direction_check,
    final,
    metric_curves,
    per_seed,
    proportion_check,
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


def _converged(cells, threshold: float) -> tuple[int, int, str]:
    """(runs below the loss threshold at the end, runs, note on diverged runs) over one or more cells of the same
    setting; a diverged run did not converge."""
    cells = [c for c in (cells if isinstance(cells, list) else [cells]) if c is not None]
    ok = sum(v < threshold for c in cells for v in per_seed(c, final("train_loss")).values())
    n = sum(len(c.runs) + len(c.diverged) for c in cells)
    diverged = sum(len(c.diverged) for c in cells)
    return ok, n, f"{diverged} run(s) diverged and count as not converged" if diverged else ""


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    part = ctx.parts["curves"]
    res, opts = part.results, part.spec.extra.get("reproduce", {})
    if not res.cells:
        a.checks.append(ClaimCheck("deep plain nets train with He init", "inconclusive", "no finished runs"))
        return a
    classes = 100 if "100" in part.spec.base.dataset else 10
    chance = math.log(classes)
    converged_at, started_at = opts.get("converged_loss", 0.5) * chance, opts.get("started_loss", 0.9) * chance
    per = steps_per_epoch({"config": part.spec.base.to_dict()}) or 1
    started = steps_to("train_loss", started_at)
    depths = sorted({_depth(c) for c in res.cells})

    def converges(depth: int, init: str, expect: str, claim: str) -> ClaimCheck:
        cells = [_cell(res, depth, init)]
        if "stall" in ctx.parts:  # more seeds of the 30-layer Xavier cell
            cells.append(_cell(ctx.parts["stall"].results, depth, init))
        ok, n, note = _converged(cells, converged_at)
        return proportion_check(claim, ok, n, expect=expect, notes=note,
                                what=f"{INITS[init]} runs reached a training loss below {converged_at:.2f}")

    if 22 in depths:
        for init in INITS:
            a.checks.append(converges(22, init, "most", f"22 layers: {INITS[init]} init converges"))
        never = float((part.spec.base.epochs + 1) * per)
        a.checks.append(direction_check(
            "22 layers: He init starts reducing the loss earlier than Xavier (paper, Figure 2)",
            sample(_cell(res, 22, "xavier-fan-in"), started, label="Xavier", diverged=never),
            sample(_cell(res, 22, "he"), started, label="He", diverged=never), expect="lower", margin=float(per),
            what=f"He − Xavier optimizer steps until the training loss is below {started_at:.2f}", unit=" steps",
            digits=0))
    if 30 in depths:
        a.checks.append(converges(30, "he", "most", "30 layers: He init converges"))
        a.checks.append(converges(30, "xavier-fan-in", "few", "30 layers: Xavier init does not converge (stalls)"))
    if 30 in depths and 14 in depths:
        err = final("test_error")
        a.checks.append(direction_check(
            "30 layers ends worse than 14 layers (He init)", sample(_cell(res, 14, "he"), err, label="14 layers"),
            sample(_cell(res, 30, "he"), err, label="30 layers", diverged=100.0 * (1 - 1 / classes)),
            expect="higher", margin=opts.get("depth_margin", 1.0), what="30 − 14 layers test error", unit=" points",
            primary=False, gate=True))
    a.tables.append(_table(res, depths, converged_at, started))
    series = {f"{_depth(c)} layers, {c.values.get('activation', 'relu')}, {INITS.get(c.values['init'])}":
              metric_curves(c, "train_loss") for c in res.cells}
    panels = {f"{d} layers": [k for k in series if k.startswith(f"{d} layers")] for d in depths}
    a.plots["Training loss per epoch, one panel per depth (band: min–max over seeds)"] = curves(
        series, ctx.plots_dir / "loss_by_depth.png", title="Training loss: He vs Xavier init by depth",
        ylabel="training loss", panels=panels, hline=chance, hline_label=f"chance ln {classes}")
    a.notes.append(f"Converged: final training loss below {converged_at:.2f} (half the chance level ln {classes} = "
                   f"{chance:.2f}); started: the first epoch end with a training loss below {started_at:.2f} (90% of "
                   f"chance), counted in optimizer steps ({per} per epoch). Diverged runs count as not converged "
                   "and as never started.")
    return a


def _table(res, depths: list[int], converged_at: float, started) -> Table:
    rows = []
    for depth in depths:
        for cell in [c for c in res.cells if _depth(c) == depth]:
            ok, n, _ = _converged(cell, converged_at)
            rows.append([str(depth), cell.values.get("activation", "relu"), INITS.get(cell.values["init"], ""),
                         summary_text(list(per_seed(cell, started).values()), 0), f"{ok}/{n}",
                         summary_text(list(per_seed(cell, final("train_loss")).values()), 3),
                         summary_text(list(per_seed(cell, final("test_error")).values())), str(len(cell.diverged))])
    return Table("Convergence per depth and initialization",
                 ["depth", "activation", "init", "steps until started", "converged", "final train loss",
                  "final test error (%)", "diverged"], rows)


REPRODUCTION = Reproduction(
    name="init-depth",
    summary="plain nets without BN at 14/22/30 layers: He vs Xavier (std sqrt(1/n)) init, ReLU, time to learn",
    paper="He et al. 2015, Delving Deep into Rectifiers (arXiv 1502.01852), section 2.2, Figures 2–3",
    claim="With the rectifier-aware init, deep plain nets train: at 22 layers both inits converge but He init "
          "starts reducing the error earlier; at 30 layers only He init converges (Xavier stalls completely); and "
          "the 30-layer net ends worse than the 14-layer one, so depth alone does not help.",
    published=(("22-layer model B, ImageNet", "both inits converge; He init starts reducing the error earlier"),
               ("30-layer model, ImageNet", "He init converges; Xavier init stalls"),
               ("30 layers vs 14 layers (He init)", "30 layers is less accurate (no numbers in Figures 2–3)")),
    parts=(Part("curves", "init-depth.toml", "depth x init on plain nets without BN"),
           Part("stall", "init-depth-stall.toml", "more seeds of the 30-layer Xavier cell")),
    analyze=analyze,
    notes="quick scale: deep plain MLPs (width 64, no BN, no skips; 10k Fashion-MNIST images, 15 epochs of SGD) stand "
          "in for the paper's plain ImageNet conv nets: depth in weight layers, ReLU, no normalization and both "
          "inits are kept; convolutions, width and data are not. 'Xavier' is the paper's std sqrt(1/n) (not "
          "Glorot's 2/(fan_in + fan_out)). 'Converges' and 'stalls' are judged within the budget (15 epochs), as "
          "the paper judges them within its plotted epochs; the 30-layer Xavier cell gets 16 more seeds (the stall "
          "part) to measure how often it converges. ReLU only, as in the paper's Figures 2–3.",
)
