"""``helu``: HeLU (ReLU forward, gradient also for slightly negative inputs) vs ReLU: accuracy and dead neuron
rate (Kimhi et al. 2024, arXiv 2411.10573)."""

from __future__ import annotations

from ...report.plots import layer_curves
from ..core import Analysis, Context, Part, Reproduction, Table
from ..evidence import direction_check, final, find_cell, per_seed, sample, site_curves, summary_text


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    part = ctx.parts["activations"]
    res = part.results
    relu, helu = find_cell(res, activation="relu"), find_cell(res, activation="helu")
    err = final("test_error")
    a.checks.append(
        direction_check(
            "HeLU generalizes better than ReLU (test error)",
            sample(relu, err, label="ReLU", diverged=90.0),
            sample(helu, err, label="HeLU", diverged=90.0),
            expect="lower",
            margin=ctx.option("error_margin"),
            what="HeLU − ReLU test error",
            unit=" points",
            gate=True,
        )
    )
    a.checks.append(
        direction_check(
            "HeLU has fewer dead neurons than ReLU (units that never fire, final epoch)",
            sample(relu, final("dnr"), label="ReLU"),
            sample(helu, final("dnr"), label="HeLU"),
            expect="lower",
            margin=ctx.option("dead_margin"),
            what="HeLU − ReLU dead-unit rate",
            digits=4,
        )
    )
    a.checks.append(
        direction_check(
            "HeLU has a lower dynamic dead neuron rate than ReLU",
            per_seed(relu, final("dnr_dynamic")),
            per_seed(helu, final("dnr_dynamic")),
            expect="lower",
            what="HeLU − ReLU dynamic DNR",
            digits=4,
            primary=False,
        )
    )
    rows = []
    for label, cell in (("ReLU", relu), ("HeLU", helu)):
        if cell is not None:
            rows.append(
                [label]
                + [
                    summary_text(list(per_seed(cell, final(m)).values()), d)
                    for m, d in (("test_error", 2), ("dnr", 4), ("dnr_dynamic", 3))
                ]
            )
    a.tables.append(
        Table(
            "Accuracy and dead neurons at the end of training",
            ["activation", "test error (%)", "dead units (never fire)", "dynamic DNR"],
            rows,
            note="dead unit: a channel whose pre-activation is never > 0 on the first 1024 training "
            "examples; dynamic DNR: the fraction of units not firing per input, averaged.",
        )
    )
    a.plots["Dead-unit rate per layer over training (one line per layer)"] = layer_curves(
        {label: site_curves(cell, "dnr") for label, cell in (("ReLU", relu), ("HeLU", helu)) if cell is not None},
        ctx.plots_dir / "dnr_per_layer.png",
        title="Dead units per layer",
        ylabel="fraction of channels dead",
    )
    return a


REPRODUCTION = Reproduction(
    name="helu",
    summary="HeLU vs ReLU: accuracy and dead neuron rate",
    spec="helu.toml",
    parts=(Part("activations", "helu.toml", "ReLU vs HeLU with the dead-neuron probe"),),
    analyze=analyze,
    notes="quick scale: a 14-layer plain MLP without BN (width 128; where dying units are most likely) on 10k "
    "Fashion-MNIST images, 15 epochs, 10 seeds, instead of the paper's CIFAR/ImageNet conv nets and "
    "transformers; HeLU's alpha is rectlab's default 0.05. Margins: 0.3 points of test error (the paper's "
    "gains are fractions of a point) and 0.01 of the dead-unit rate.",
)
