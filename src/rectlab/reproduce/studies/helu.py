"""``helu``: HeLU (ReLU forward, gradient also for slightly negative inputs) vs ReLU: accuracy and dead neuron
rate (Kimhi et al. 2024, arXiv 2411.10573)."""

from __future__ import annotations

from ...report.plots import layer_curves
from ..core import Analysis, Context, Part, Reproduction, Table
from ..evidence import direction_check, final, find_cell, per_seed, site_curves, summary_text


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    res = ctx.parts["activations"].results
    relu, helu = find_cell(res, activation="relu"), find_cell(res, activation="helu")
    a.checks.append(direction_check("HeLU generalizes better than ReLU (test error)",
                                    per_seed(relu, final("test_error")), per_seed(helu, final("test_error")),
                                    expect="lower", what="HeLU − ReLU test error", unit=" points"))
    a.checks.append(direction_check("HeLU has fewer dead neurons than ReLU (units that never fire, final epoch)",
                                    per_seed(relu, final("dnr")), per_seed(helu, final("dnr")), expect="lower",
                                    what="HeLU − ReLU dead-unit rate", digits=4))
    a.checks.append(direction_check("HeLU has a lower dynamic dead neuron rate than ReLU",
                                    per_seed(relu, final("dnr_dynamic")), per_seed(helu, final("dnr_dynamic")),
                                    expect="lower", what="HeLU − ReLU dynamic DNR", digits=4, primary=False))
    rows = []
    for label, cell in (("ReLU", relu), ("HeLU", helu)):
        if cell is not None:
            rows.append([label] + [summary_text(list(per_seed(cell, final(m)).values()), d)
                                   for m, d in (("test_error", 2), ("dnr", 4), ("dnr_dynamic", 3))])
    a.tables.append(Table("Accuracy and dead neurons at the end of training",
                          ["activation", "test error (%)", "dead units (never fire)", "dynamic DNR"], rows,
                          note="dead unit: a channel whose pre-activation is never > 0 on the first 1024 training "
                               "examples; dynamic DNR: the fraction of units not firing per input, averaged."))
    a.plots["Dead-unit rate per layer over training (one line per layer)"] = layer_curves(
        {label: site_curves(cell, "dnr") for label, cell in (("ReLU", relu), ("HeLU", helu)) if cell is not None},
        ctx.plots_dir / "dnr_per_layer.png", title="Dead units per layer", ylabel="fraction of channels dead")
    return a


REPRODUCTION = Reproduction(
    name="helu",
    summary="HeLU vs ReLU: accuracy and dead neuron rate",
    paper="Kimhi, Kashani, Mendelson & Baskin 2024, Hysteresis Activation Function for Efficient Inference "
          "(arXiv 2411.10573)",
    claim="HeLU (ReLU at inference; in training the gradient also flows for inputs slightly below 0) mitigates the "
          "dying-ReLU problem and improves generalization over ReLU at no inference cost.",
    published=(("HeLU vs ReLU", "better generalization across datasets; fewer dying neurons"),),
    parts=(Part("activations", "helu.toml", "ReLU vs HeLU with the dead-neuron probe"),),
    analyze=analyze,
    notes="a plain 14-layer conv net without BN (where dying units are most likely) on a Fashion-MNIST subset at "
          "quick scale; HeLU's alpha is rectlab's default 0.05.",
)
