"""``erase-relu``: EraseReLU on CIFAR ResNets, pre-activation ResNets, WRN and VGG-BN; ablations of the location
and the proportion of erased modules; convergence speed (Dong et al. 2017, arXiv 1709.07634)."""

from __future__ import annotations

import numpy as np

from ...report.plots import curves, points_with_ci
from ..core import Analysis, ClaimCheck, Context, Part, Reproduction
from ..evidence import (
    auc,
    direction_check,
    final,
    find_cell,
    metric_curves,
    missing_check,
    per_seed,
    sample,
)

DEPTH = {"resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56, "resnet110": 110}


def _groups(results) -> dict[str, dict]:
    """``{architecture label: the grid values selecting it}``: one per model (and model options) of the grid."""
    out: dict[str, dict] = {}
    for c in results.cells:
        sel = {k: v for k, v in c.values.items() if k in ("model", "model_kwargs")}
        kwargs = sel.get("model_kwargs", {})
        name = sel.get("model", results.spec.get("base", {}).get("model", "model"))
        label = f"{name}, {kwargs['blocks']} blocks" if "blocks" in kwargs else str(name)
        out.setdefault(label, sel)
    return out


def _depth(label: str, sel: dict) -> int | None:
    kwargs = sel.get("model_kwargs", {})
    return int(kwargs["blocks"]) if "blocks" in kwargs else DEPTH.get(sel.get("model", ""))


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    part = ctx.parts["models"]
    models = part.results
    margin = float(part.spec.extra.get("reproduce", {}).get("margin", 0.3))
    err, speed = final("test_error"), auc("train_loss")
    gains: dict[str, dict[int, float]] = {}
    erased_cells = {}
    for label, sel in _groups(models).items():
        base, erased = find_cell(models, erase_relu=0.0, **sel), find_cell(models, erase_relu=1.0, **sel)
        erased_cells[label] = erased
        b, e = sample(base, err, label="baseline", diverged=90.0), sample(erased, err, label="erased", diverged=90.0)
        a.checks.append(direction_check(f"{label}: erasing the last ReLU of every basic module lowers the error",
                                        b, e, expect="lower", margin=margin, what="erased − baseline test error",
                                        unit=" points", gate=True))
        gains[label] = {s: e.values[s] - b.values[s] for s in e.values if s in b.values}
        a.checks.append(direction_check(
            f"{label}: EraseReLU converges faster (learning speed: mean training loss over the epochs)",
            per_seed(base, speed), per_seed(erased, speed), expect="lower",
            what="erased − baseline mean training loss", digits=3, primary=False))
    depths = {label: _depth(label, sel) for label, sel in _groups(models).items()}
    ranked = sorted((d, label) for label, d in depths.items() if d is not None and len(gains.get(label, {})) >= 2)
    if len(ranked) >= 2:
        (_, shallow), (_, deep) = ranked[0], ranked[-1]
        a.checks.append(direction_check(
            f"the improvement is larger for deeper nets ({deep} vs {shallow})", gains[shallow], gains[deep],
            expect="lower", what=f"gain({deep}) − gain({shallow})", unit=" points", primary=False))
    else:
        a.checks.append(missing_check("the improvement is larger for deeper nets", "needs two depths", primary=False))
    a.plots["Training loss, baseline vs erased (band: min–max over seeds)"] = curves(
        {cell.label: metric_curves(cell, "train_loss") for cell in models.cells},
        ctx.plots_dir / "loss_erased.png", title="EraseReLU: training loss", ylabel="training loss", log=True)
    _location(ctx, a, erased_cells)
    prop = ctx.parts.get("proportion")
    if prop is not None and prop.results.cells:
        by_p = {float(c.values["erase_relu"]): per_seed(c, final("test_error")) for c in prop.results.cells}
        if 0.0 in by_p and 1.0 in by_p:
            a.checks.append(direction_check(
                "proportion: erasing in 100% of the modules beats 0%", by_p[0.0], by_p[1.0], expect="lower",
                what="100% − 0% test error", unit=" points", primary=False))
        # trend: per seed, the least-squares slope of error against the proportion
        seeds = sorted(set.intersection(*(set(v) for v in by_p.values()))) if by_p else []
        ps = sorted(by_p)
        slopes = {s: float(np.polyfit(ps, [by_p[p][s] for p in ps], 1)[0]) for s in seeds} if len(ps) > 1 else {}
        a.checks.append(direction_check(
            "proportion: the error falls as the erased proportion grows (per-seed linear trend)",
            dict.fromkeys(slopes, 0.0), slopes, expect="lower", what="slope of error vs proportion",
            unit=" points per 100%", primary=False))
        a.plots["Final test error by proportion of erased modules (dots: seeds; black: mean and 95% CI)"] = \
            points_with_ci({f"{int(p * 100)}%": list(by_p[p].values()) for p in ps},
                           ctx.plots_dir / "proportion.png", title="EraseReLU: proportion of basic modules erased",
                           xlabel="test error (%)")
    if not any(c.primary for c in a.checks):
        a.checks.append(ClaimCheck("EraseReLU lowers the error", "inconclusive", "no runs"))
    return a


def _location(ctx: Context, a: Analysis, erased_cells: dict) -> None:
    """Last vs other ReLU of the module; "last" comes from the models part when the location part lacks it."""
    loc = ctx.parts.get("location")
    if loc is None or not loc.results.cells:
        return
    by_loc = {c.values["erase_location"]: per_seed(c, final("test_error")) for c in loc.results.cells}
    if "last" not in by_loc:
        same = [c for c in erased_cells.values() if c is not None and
                c.values.get("model_kwargs", loc.spec.base.model_kwargs) == loc.spec.base.model_kwargs]
        if same:
            by_loc["last"] = per_seed(same[0], final("test_error"))
    for other in (k for k in by_loc if k != "last" and "last" in by_loc):
        a.checks.append(direction_check(
            f"location: erasing the last ReLU beats erasing the {other} one", by_loc[other], by_loc["last"],
            expect="lower", what=f"last − {other} test error", unit=" points", primary=False))


REPRODUCTION = Reproduction(
    name="erase-relu",
    summary="EraseReLU: baseline vs erased on ResNets/WRN/VGG-BN, location and proportion ablations, speed",
    paper="Dong et al. 2017, EraseReLU: A Simple Way to Ease the Training of Deep Convolution Neural Networks "
          "(arXiv 1709.07634)",
    claim="Erasing the last ReLU of every basic module improves ResNet, pre-activation ResNet, WRN and VGG-BN on "
          "SVHN, CIFAR-10/100 and ImageNet, more so for deeper nets, and speeds up convergence; the location "
          "(last ReLU of the module) and the proportion (all modules) matter; 16.53% single-model error on "
          "CIFAR-100.",
    published=(("best single model, CIFAR-100 (error %)", "16.53"),
               ("location", "erasing the last ReLU of the module works best"),
               ("proportion", "erasing in all basic modules usually works best"),
               ("depth", "larger improvements for deeper networks")),
    parts=(Part("models", "erase-relu.toml", "baseline vs EraseReLU per architecture"),
           Part("location", "erase-relu-location.toml", "which ReLU of the basic module is erased"),
           Part("proportion", "erase-relu-proportion.toml", "proportion of basic modules erased",
                scales=("smoke", "full"))),
    analyze=analyze,
    notes="quick scale: residual MLPs (post-activation ResNet blocks with linear layers instead of 3x3 convolutions, "
          "BN, width 128) with 2 and 6 blocks on 12k Fashion-MNIST images for 12 epochs stand in for the paper's "
          "CIFAR ResNets trained 160+ epochs: they keep the basic module, the place of its last ReLU (after the "
          "addition) and two depths, and drop the convolutions. The location ablation erases the first ReLU of the "
          "6-block net and compares it with the models part's erased (last-ReLU) cell; the proportion ablation runs "
          "at full scale only. Margin: 0.3 points, our smallest gain worth reporting (the paper's gains are "
          "fractions of a point). Erased modules are picked at random (seeded) when the proportion is below 100%.",
)
