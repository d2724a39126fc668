"""``init-depth``: plain nets without BatchNorm at 14, 22 and 30 layers with He vs Xavier initialization,
ReLU and PReLU (He et al. 2015, arXiv 1502.01852, section 2.2 and Figures 2–3)."""

from __future__ import annotations

import math

from ...report.plots import curves
from ..core import Analysis, ClaimCheck, Context, Part, Reproduction, Table
from ..evidence import at_epoch, cells_where, direction_check, final, metric_curves, per_seed, summary_text

CONVERGED_FRACTION = 0.8  # a run has converged when its final training loss is below 80% of chance level


def _depth(cell) -> int:
    return int(cell.values["model_kwargs"]["depth"])


def _label(cell) -> str:
    return f"{cell.values['activation']}, {cell.values['init']}"


def _pooled(results, depth: int, init: str, value) -> dict[int, float]:
    """Per-(seed, activation) values pooled over activations; keys are comparable across inits."""
    out = {}
    for cell in cells_where(results, init=init):
        if _depth(cell) != depth:
            continue
        offset = 1000 * sorted({c.values["activation"] for c in results.cells}).index(cell.values["activation"])
        out.update({offset + s: v for s, v in per_seed(cell, value).items()})
    return out


def _convergence_check(claim: str, losses: dict[int, float], threshold: float, should: bool, scale: str,
                       what: str) -> ClaimCheck:
    n = len(losses)
    if n == 0:
        return ClaimCheck(claim, "inconclusive", f"no finished runs for {what}")
    done = sum(v < threshold for v in losses.values())
    evidence = f"{what}: {done} of {n} runs reached a training loss below {threshold:.3f} (80% of chance)"
    if should and done == n or not should and done == 0:
        return ClaimCheck(claim, "reproduced", evidence)
    if should and done == 0 and scale != "full":
        return ClaimCheck(claim, "inconclusive",
                          f"{evidence}; the budget at scale {scale!r} is far shorter than the paper's, so a late start "
                          "cannot be ruled out")
    if should and done == 0 or not should and done == n:
        return ClaimCheck(claim, "not reproduced", evidence)
    return ClaimCheck(claim, "inconclusive", f"{evidence} (mixed outcome)")


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    res = ctx.parts["curves"].results
    if not res.cells:
        a.checks.append(ClaimCheck("deep plain nets train with He init", "inconclusive", "no finished runs"))
        return a
    num_classes = 100 if "100" in str(res.spec.get("base", {}).get("dataset", "")) else 10
    chance = math.log(num_classes)
    threshold = CONVERGED_FRACTION * chance
    depths = sorted({_depth(c) for c in res.cells})
    final_loss = final("train_loss")
    if 22 in depths:
        for init in ("he", "xavier"):
            a.checks.append(_convergence_check(
                f"22 layers: {init} init converges", _pooled(res, 22, init, final_loss), threshold, True, ctx.scale,
                f"22 layers, {init}"))
        a.checks.append(direction_check(
            "22 layers: He init starts reducing the loss earlier than Xavier (paper, Figure 2)",
            _pooled(res, 22, "xavier", at_epoch("train_loss", 2)), _pooled(res, 22, "he", at_epoch("train_loss", 2)),
            expect="lower", what="He − Xavier training loss at epoch 2", digits=3, primary=False))
    if 30 in depths:
        a.checks.append(_convergence_check(
            "30 layers: He init converges", _pooled(res, 30, "he", final_loss), threshold, True, ctx.scale,
            "30 layers, he"))
        a.checks.append(_convergence_check(
            "30 layers: Xavier init does not converge (stalls)", _pooled(res, 30, "xavier", final_loss), threshold,
            False, ctx.scale, "30 layers, xavier"))
    if 30 in depths and 14 in depths:
        a.checks.append(direction_check(
            "30 layers ends worse than 14 layers (He init)", _pooled(res, 14, "he", final("test_error")),
            _pooled(res, 30, "he", final("test_error")), expect="higher", what="30 − 14 layers test error",
            unit=" points", primary=False))
    rows = []
    for depth in depths:
        for cell in [c for c in res.cells if _depth(c) == depth]:
            losses = per_seed(cell, final_loss)
            done = sum(v < threshold for v in losses.values())
            rows.append([str(depth), cell.values["activation"], cell.values["init"],
                         summary_text(list(per_seed(cell, at_epoch("train_loss", 1)).values()), 3),
                         summary_text(list(losses.values()), 3), f"{done}/{len(losses)}",
                         summary_text(list(per_seed(cell, final("test_error")).values()))])
    a.tables.append(Table("Convergence per depth and initialization",
                          ["depth", "activation", "init", "train loss, epoch 1", "final train loss", "converged",
                           "final test error (%)"], rows,
                          note=f"converged: final training loss below {threshold:.3f} = 80% of the chance level "
                               f"ln({num_classes}) = {chance:.3f}"))
    series = {f"{_depth(c)} layers, {_label(c)}": metric_curves(c, "train_loss") for c in res.cells}
    panels = {f"{d} layers": [k for k in series if k.startswith(f"{d} layers")] for d in depths}
    a.plots["Training loss per epoch, one panel per depth (band: min–max over seeds)"] = curves(
        series, ctx.plots_dir / "loss_by_depth.png", title="Training loss: He vs Xavier init by depth",
        ylabel="training loss", panels=panels, hline=chance, hline_label=f"chance ln {num_classes}")
    return a


REPRODUCTION = Reproduction(
    name="init-depth",
    summary="plain nets without BN at 14/22/30 layers: He vs Xavier init, ReLU and PReLU, training-loss curves",
    paper="He et al. 2015, Delving Deep into Rectifiers (arXiv 1502.01852), section 2.2, Figures 2–3",
    claim="With the rectifier-aware init, deep plain nets train: at 22 layers both inits converge but He init "
          "starts reducing the error earlier; at 30 layers only He init converges (Xavier stalls completely); and "
          "the 30-layer net ends worse than the 14-layer one, so depth alone does not help.",
    published=(("22-layer model B, ImageNet", "both inits converge; He init starts reducing the error earlier"),
               ("30-layer model, ImageNet", "He init converges; Xavier init stalls"),
               ("30 layers vs 14 layers (He init)", "30 layers is less accurate (no numbers in Figures 2–3)")),
    parts=(Part("curves", "init-depth.toml", "depth x init x activation on plain nets without BN"),),
    analyze=analyze,
    notes="narrow CIFAR-sized plain nets (widths 8/16/32 at quick scale) instead of the paper's ImageNet models; "
          "a few hundred SGD steps at quick scale vs. many epochs in the paper, so 'does not converge' at quick "
          "scale means 'did not start within the budget'.",
)
