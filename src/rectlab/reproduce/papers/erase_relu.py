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

DEPTH = {
    "resnet20": 20,
    "resnet32": 32,
    "resnet44": 44,
    "resnet56": 56,
    "resnet110": 110,
    "preact-resnet110": 110,
    "wrn-16-4": 16,
    "vgg16-bn": 16,
}


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


def _depth(sel: dict, base_model: str | None = None) -> int | None:
    kwargs = sel.get("model_kwargs", {})
    return int(kwargs["blocks"]) if "blocks" in kwargs else DEPTH.get(sel.get("model", base_model or ""))


def _gains(ctx: Context, a: Analysis, part: str, primary_deepest: bool, margin: float, where: str = "") -> dict:
    """Baseline vs erased per architecture of one part: an error check (primary for the deepest architecture when
    ``primary_deepest``) and a learning-speed check per architecture; returns the per-seed gains and erased cells."""
    res = ctx.parts[part].results
    base_model = res.spec.get("base", {}).get("model")
    err, speed = final("test_error"), auc("train_loss")
    groups = _groups(res)
    depths = {label: _depth(sel, base_model) for label, sel in groups.items()}
    deepest = max((d for d in depths.values() if d is not None), default=None)
    gains, erased_cells = {}, {}
    for label, sel in groups.items():
        base, erased = find_cell(res, erase_relu=0.0, **sel), find_cell(res, erase_relu=1.0, **sel)
        erased_cells[label] = erased
        b, e = sample(base, err, label="baseline", diverged=90.0), sample(erased, err, label="erased", diverged=90.0)
        primary = primary_deepest and (depths[label] == deepest or deepest is None)
        a.checks.append(
            direction_check(
                f"{label}{where}: erasing the last ReLU of every basic module lowers the error"
                + (" (the deepest net)" if primary and len(groups) > 1 else ""),
                b,
                e,
                expect="lower",
                margin=margin,
                what="erased − baseline test error",
                unit=" points",
                gate=True,
                primary=primary,
            )
        )
        gains[label] = {s: e.values[s] - b.values[s] for s in e.values if s in b.values}
        a.checks.append(
            direction_check(
                f"{label}{where}: EraseReLU converges faster (learning speed: mean training loss over the epochs)",
                per_seed(base, speed),
                per_seed(erased, speed),
                expect="lower",
                what="erased − baseline mean training loss",
                digits=3,
                primary=False,
            )
        )
    return {"gains": gains, "erased": erased_cells, "depths": depths}


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    margin = float(ctx.option("margin"))
    conv = _gains(ctx, a, "models", True, margin)
    dense = _gains(ctx, a, "mlp", False, margin) if "mlp" in ctx.parts else None

    def ranked_depths(g: dict) -> list[tuple[int, str]]:
        return sorted((d, lab) for lab, d in g["depths"].items() if d is not None and len(g["gains"].get(lab, {})) >= 2)

    deeper = next((g for g in (conv, dense) if g is not None and len(ranked_depths(g)) >= 2), None)
    if deeper is not None:
        ranked = ranked_depths(deeper)
        (_, shallow), (_, deep) = ranked[0], ranked[-1]
        a.checks.append(
            direction_check(
                f"the improvement is larger for deeper nets ({deep} vs {shallow})",
                deeper["gains"][shallow],
                deeper["gains"][deep],
                expect="lower",
                what=f"gain({deep}) − gain({shallow})",
                unit=" points",
                primary=False,
            )
        )
    else:
        a.checks.append(missing_check("the improvement is larger for deeper nets", "needs two depths", primary=False))
    models = ctx.parts["models"].results
    a.plots["Training loss, baseline vs erased (band: min–max over seeds)"] = curves(
        {cell.label: metric_curves(cell, "train_loss") for cell in models.cells},
        ctx.plots_dir / "loss_erased.png",
        title="EraseReLU: training loss",
        ylabel="training loss",
        log=True,
    )
    _location(ctx, a, {**conv["erased"], **(dense["erased"] if dense else {})})
    prop = ctx.parts.get("proportion")
    if prop is not None and prop.results.cells:
        by_p = {float(c.values["erase_relu"]): per_seed(c, final("test_error")) for c in prop.results.cells}
        if 0.0 in by_p and 1.0 in by_p:
            a.checks.append(
                direction_check(
                    "proportion: erasing in 100% of the modules beats 0%",
                    by_p[0.0],
                    by_p[1.0],
                    expect="lower",
                    what="100% − 0% test error",
                    unit=" points",
                    primary=False,
                )
            )
        # trend: per seed, the least-squares slope of error against the proportion
        seeds = sorted(set.intersection(*(set(v) for v in by_p.values()))) if by_p else []
        ps = sorted(by_p)
        slopes = {s: float(np.polyfit(ps, [by_p[p][s] for p in ps], 1)[0]) for s in seeds} if len(ps) > 1 else {}
        a.checks.append(
            direction_check(
                "proportion: the error falls as the erased proportion grows (per-seed linear trend)",
                dict.fromkeys(slopes, 0.0),
                slopes,
                expect="lower",
                what="slope of error vs proportion",
                unit=" points per 100%",
                primary=False,
            )
        )
        a.plots["Final test error by proportion of erased modules (dots: seeds; black: mean and 95% CI)"] = (
            points_with_ci(
                {f"{int(p * 100)}%": list(by_p[p].values()) for p in ps},
                ctx.plots_dir / "proportion.png",
                title="EraseReLU: proportion of basic modules erased",
                xlabel="test error (%)",
            )
        )
    if not any(c.primary for c in a.checks):
        a.checks.append(ClaimCheck("EraseReLU lowers the error", "inconclusive", "no runs"))
    return a


def _location(ctx: Context, a: Analysis, erased_cells: dict) -> None:
    """Last vs other ReLU of the module; "last" comes from the erased cell of the same model in another part when the
    location part lacks it."""
    loc = ctx.parts.get("location")
    if loc is None or not loc.results.cells:
        return
    by_loc = {c.values["erase_location"]: per_seed(c, final("test_error")) for c in loc.results.cells}
    if "last" not in by_loc:
        base = loc.spec.base

        def same_model(cell) -> bool:
            config = cell.runs[0]["config"] if cell.runs else {}
            return config.get("model") == base.model and (config.get("model_kwargs") or {}) == base.model_kwargs

        same = [c for c in erased_cells.values() if c is not None and same_model(c)]
        if same:
            by_loc["last"] = per_seed(same[0], final("test_error"))
    for other in (k for k in by_loc if k != "last" and "last" in by_loc):
        a.checks.append(
            direction_check(
                f"location: erasing the last ReLU beats erasing the {other} one",
                by_loc[other],
                by_loc["last"],
                expect="lower",
                what=f"last − {other} test error",
                unit=" points",
                primary=False,
            )
        )


REPRODUCTION = Reproduction(
    name="erase-relu",
    summary="EraseReLU: baseline vs erased on ResNets/WRN/VGG-BN, location and proportion ablations, speed",
    spec="erase-relu.toml",
    parts=(
        Part("models", "erase-relu.toml", "baseline vs EraseReLU per architecture"),
        Part("mlp", "erase-relu-mlp.toml", "baseline vs EraseReLU on residual MLPs (secondary)", scales=("quick",)),
        Part("location", "erase-relu-location.toml", "which ReLU of the basic module is erased"),
        Part(
            "proportion", "erase-relu-proportion.toml", "proportion of basic modules erased", scales=("smoke", "full")
        ),
    ),
    analyze=analyze,
    notes="quick scale: a CIFAR-style ResNet-20 (post-activation basic blocks with BN, widths 8-16-32) on "
    "Fashion-MNIST pooled to 14x14 (8k images, 12 epochs) stands in for the paper's CIFAR ResNets trained 160+ "
    "epochs: it keeps the conv basic module and the place of its last ReLU (after the addition); its verdict is "
    "the study's (the deepest net, as the paper's claim is about deep nets). Residual MLPs (dense basic "
    "blocks, width 128) with 2 and 6 blocks run beside it as a secondary proxy, with the location ablation (the "
    "first ReLU of the 6-block net against the last); the proportion ablation runs at full scale only. Margin: "
    "0.3 points, our smallest gain worth reporting (the paper's gains are fractions of a point). Erased modules "
    "are picked at random (seeded) when the proportion is below 100%.",
)
