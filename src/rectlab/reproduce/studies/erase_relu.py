"""``erase-relu``: EraseReLU on CIFAR ResNets, pre-activation ResNets, WRN and VGG-BN; ablations of the location
and the proportion of erased modules; convergence speed (Dong et al. 2017, arXiv 1709.07634)."""

from __future__ import annotations

import math

import numpy as np

from ...report.plots import curves, points_with_ci
from ..core import Analysis, ClaimCheck, Context, Part, Reproduction, Table
from ..evidence import (
    auc,
    direction_check,
    final,
    find_cell,
    metric_curves,
    missing_check,
    per_seed,
    summary_text,
)

DEPTH = {"resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56, "resnet110": 110}


def _epochs_to(curve: list[float], target: float) -> float:
    for i, v in enumerate(curve):
        if v <= target:
            return float(i + 1)
    return math.inf


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    models = ctx.parts["models"].results
    names = list(dict.fromkeys(c.values.get("model") for c in models.cells if "model" in c.values))
    if not names:  # one model: it lives in the base config
        names = [None]
    diffs: dict[str, dict[int, float]] = {}
    conv_rows = []
    for name in names:
        sel = {"model": name} if name is not None else {}
        label = name or str(models.spec.get("base", {}).get("model"))
        base = find_cell(models, erase_relu=0.0, **sel)
        erased = find_cell(models, erase_relu=1.0, **sel)
        b, e = per_seed(base, final("test_error")), per_seed(erased, final("test_error"))
        a.checks.append(direction_check(f"{label}: erasing the last ReLU of every basic module lowers the error",
                                        b, e, expect="lower", what="erased − baseline test error", unit=" points"))
        diffs[label] = {s: e[s] - b[s] for s in e if s in b}
        a.checks.append(direction_check(
            f"{label}: EraseReLU converges faster (mean training loss over the epochs)",
            per_seed(base, auc("train_loss")), per_seed(erased, auc("train_loss")), expect="lower",
            what="erased − baseline mean training loss", digits=3, primary=False))
        if base is not None and erased is not None:
            finals = [r["epochs"][-1]["train_loss"] for r in base.runs]
            target = float(max(finals))  # the loss every baseline run reached: compare how soon each gets there
            for tag, cell in (("baseline", base), ("erased", erased)):
                epochs = [_epochs_to([e["train_loss"] for e in r["epochs"]], target) for r in cell.runs]
                reached = [x for x in epochs if math.isfinite(x)]
                conv_rows.append([label, tag, f"{target:.3f}", f"{len(reached)}/{len(epochs)}",
                                  summary_text(reached, 1) if reached else "not reached"])
    resnets = [n for n in diffs if n in DEPTH and len(diffs[n]) >= 2]
    if len(resnets) >= 2:
        shallow, deep = min(resnets, key=DEPTH.get), max(resnets, key=DEPTH.get)
        a.checks.append(direction_check(
            f"the improvement is larger for deeper nets ({deep} vs {shallow})", diffs[shallow], diffs[deep],
            expect="lower", what=f"gain({deep}) − gain({shallow})", unit=" points", primary=False))
    else:
        a.checks.append(missing_check("the improvement is larger for deeper nets",
                                      "needs two ResNet depths; this scale runs "
                                      f"{', '.join(names) if names != [None] else 'one model'}", primary=False))
    if conv_rows:
        a.tables.append(Table("Convergence speed: epochs to reach the baseline's worst final training loss",
                              ["model", "variant", "target loss", "reached", "epochs (mean ± std)"], conv_rows))
    series = {}
    for cell in models.cells:
        series[cell.label] = metric_curves(cell, "train_loss")
    a.plots["Training loss, baseline vs erased (band: min–max over seeds)"] = curves(
        series, ctx.plots_dir / "loss_erased.png", title="EraseReLU: training loss", ylabel="training loss", log=True)

    loc = ctx.parts.get("location")
    if loc is not None and loc.results.cells:
        by_loc = {c.values["erase_location"]: per_seed(c, final("test_error")) for c in loc.results.cells}
        others = [k for k in by_loc if k != "last"]
        for other in others:
            a.checks.append(direction_check(
                f"location: erasing the last ReLU beats erasing the {other} one", by_loc[other], by_loc["last"],
                expect="lower", what=f"last − {other} test error", unit=" points", primary=False))
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
           Part("proportion", "erase-relu-proportion.toml", "proportion of basic modules erased")),
    analyze=analyze,
    notes="at quick scale only a narrow ResNet-20 on a Fashion-MNIST subset for a few epochs; the paper trains "
          "full-width models for 160+ epochs on CIFAR/SVHN/ImageNet, where the effect is a fraction of a point. "
          "Erased modules are picked at random (seeded) when the proportion is below 100%.",
)
