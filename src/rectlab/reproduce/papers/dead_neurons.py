"""``dead-neurons``: the dynamic dead neuron rate (DNR) per layer over training for ReLU, LReLU, PReLU, ELU and GELU,
and for ReLU nets magnitude-pruned to several sparsities (Liu et al. 2022, "AP: Selective Activation for
De-sparsifying Pruned Neural Networks", arXiv 2212.06145)."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from ...report.plots import curves, layer_curves
from ..core import Analysis, Context, Part, Reproduction, Table
from ..evidence import direction_check, final, metric_curves, per_seed, sample, site_curves, summary_text


def _after_pruning(prune_epoch: int):
    """Mean dynamic DNR over the epochs after pruning ("during optimization" of the pruned net)."""

    def value(run) -> float:
        vals = [e["dnr_dynamic"] for e in run["epochs"][prune_epoch:] if e.get("dnr_dynamic") is not None]
        return float(np.mean(vals)) if vals else float("nan")

    return value


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    acts = ctx.parts["activations"].results
    rows = []
    for cell in acts.cells:
        rows.append(
            [cell.label]
            + [
                summary_text(list(per_seed(cell, final(m)).values()), d)
                for m, d in (("test_error", 2), ("dnr", 4), ("dnr_dynamic", 3))
            ]
        )
    a.tables.append(
        Table(
            "Dead neurons at the end of training, by activation",
            ["activation", "test error (%)", "dead units (never fire)", "dynamic DNR"],
            rows,
            note="A unit fires when its pre-activation is > 0. Dead unit: a channel that never fires "
            "on the first 1024 training examples. Dynamic DNR: the fraction of units not firing "
            "for an input, averaged over inputs and units (Liu et al. 2022).",
        )
    )
    a.plots["Dynamic DNR per layer over training, by activation (one line per layer)"] = layer_curves(
        {c.label: site_curves(c, "dnr_dynamic") for c in acts.cells},
        ctx.plots_dir / "dnr_by_activation.png",
        title="Dynamic dead neuron rate per layer",
        ylabel="dynamic DNR",
    )

    pruned = ctx.parts["pruning"]
    res = pruned.results
    prune_epoch = pruned.spec.base.prune_epoch
    margin = float(ctx.option("margin"))
    by_s = {float(c.values["prune_sparsity"]): c for c in res.cells}
    sparsities = sorted(by_s)
    value = _after_pruning(prune_epoch)
    if len(sparsities) > 1:
        top = sparsities[-1]
        a.checks.append(
            direction_check(
                f"the pruned net ({top:.0%} sparsity) has a lower dynamic DNR than the dense one during training",
                sample(by_s.get(0.0), value, label="dense"),
                sample(by_s[top], value, label=f"{top:.0%} sparse"),
                expect="lower",
                margin=margin,
                what=f"{top:.0%} − dense dynamic DNR after pruning",
                digits=4,
            )
        )
    # monotone trend: per seed, Spearman correlation of sparsity and DNR; claimed negative
    seeds = sorted(set.intersection(*(set(per_seed(c, value)) for c in by_s.values()))) if by_s else []
    rhos = {}
    for s in seeds:
        ys = [per_seed(by_s[p], value)[s] for p in sparsities]
        if len(set(ys)) > 1:
            rhos[s] = float(sps.spearmanr(sparsities, ys)[0])
    a.checks.append(
        direction_check(
            "the more the network is pruned, the lower its dynamic DNR (per-seed Spearman correlation < 0)",
            dict.fromkeys(rhos, 0.0),
            rhos,
            expect="lower",
            what="Spearman rho(sparsity, DNR)",
            digits=3,
            primary=False,
        )
    )
    rows = []
    for p in sparsities:
        c = by_s[p]
        rows.append(
            [
                f"{p:.0%}",
                summary_text(list(per_seed(c, final("sparsity")).values()), 3),
                summary_text(list(per_seed(c, value).values()), 3),
                summary_text(list(per_seed(c, final("dnr")).values()), 4),
                summary_text(list(per_seed(c, final("test_error")).values())),
            ]
        )
    a.tables.append(
        Table(
            f"ReLU nets pruned after epoch {prune_epoch} (global magnitude pruning), then trained on",
            [
                "target sparsity",
                "achieved sparsity",
                "dynamic DNR after pruning (mean over epochs)",
                "dead units (final)",
                "test error (%)",
            ],
            rows,
        )
    )
    a.plots[
        f"Dynamic DNR over training by sparsity (pruned at the end of epoch {prune_epoch}; that epoch's "
        "value is measured on the pruned net)"
    ] = curves(
        {f"{p:.0%} sparse": metric_curves(by_s[p], "dnr_dynamic") for p in sparsities},
        ctx.plots_dir / "dnr_by_sparsity.png",
        title=f"Dynamic DNR, ReLU nets pruned after epoch {prune_epoch}",
        ylabel="dynamic DNR (whole net)",
    )
    a.notes.append(
        "Pruning: after the evaluation of epoch "
        f"{prune_epoch}, all conv and linear weights are pruned by global L1 magnitude "
        "(rectlab.training.pruning, a run option of the study runner) and training continues with the "
        "masks fixed. "
        "The DNR of that epoch is measured on the freshly pruned net."
    )
    return a


REPRODUCTION = Reproduction(
    name="dead-neurons",
    summary="dynamic dead neuron rate per layer over training for 5 activations, and after magnitude pruning",
    spec="dead-neurons.toml",
    parts=(
        Part("activations", "dead-neurons.toml", "DNR per layer over training by activation"),
        Part("pruning", "dead-neurons-pruning.toml", "ReLU nets magnitude-pruned to several sparsities"),
    ),
    analyze=analyze,
    notes="quick scale: a 3x256 MLP on 10k Fashion-MNIST images instead of the paper's CIFAR ResNets/VGG; one-shot "
    "global magnitude pruning of the trained net (after 8 of 12 epochs) and fine-tuning with fixed masks, "
    "instead of the paper's pruning methods; DNR measured after every epoch on the first 1024 training "
    "examples in eval mode (units of an MLP are its neurons). Margin: 0.01 of the dynamic DNR, our smallest "
    "drop worth reporting (the paper plots the trend).",
)
