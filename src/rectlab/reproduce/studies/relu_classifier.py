"""``relu-classifier``: ReLU as the classification function instead of softmax (Agarap 2018, arXiv 1803.08375)."""

from __future__ import annotations

from ...report.plots import curves
from ..core import Analysis, Context, Part, Reproduction, Table
from ..evidence import equivalence_check, final, find_cell, metric_curves, per_seed, summary_text

MARGIN = 1.0  # points of test error within which "comparable" holds


def _dead_classes(ctx: Context, cell) -> list[float]:
    """Per run: classes whose rectified score is 0 on every test input (they can never be predicted or learn)."""
    import torch

    from ...data import load
    from .. import trained

    part = ctx.parts["heads"]
    base = part.results.spec.get("base", {})
    data = load(base.get("dataset", "fashion-mnist"), data_dir=ctx.execution.get("data_dir"))
    batches, _ = trained.test_batches(data, base.get("test_limit"))
    out = []
    for run in cell.runs:
        model = trained.load_trained(run, part.dir, data)
        with torch.no_grad():
            peak = torch.stack([model(x).max(0).values for x in batches]).max(0).values
        out.append(float((peak <= 0).sum()))
    return out


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    res = ctx.parts["heads"].results
    models = list(dict.fromkeys(c.values["model"] for c in res.cells if "model" in c.values)) or [None]
    rows, series = [], {}
    for model in models:
        sel = {"model": model} if model else {}
        label = model or str(res.spec.get("base", {}).get("model"))
        soft, relu = find_cell(res, head="linear", **sel), find_cell(res, head="relu-classifier", **sel)
        a.checks.append(equivalence_check(
            f"{label}: ReLU as the classification function is comparable to softmax (within ±{MARGIN:g} point)",
            per_seed(soft, final("test_error")), per_seed(relu, final("test_error")), margin=MARGIN,
            what="ReLU-classifier − softmax test error", unit=" points"))
        for head, cell in (("softmax (linear + cross-entropy)", soft), ("ReLU classifier", relu)):
            if cell is None:
                continue
            dead = summary_text(_dead_classes(ctx, cell), 1) if cell.values.get("head") == "relu-classifier" else "–"
            rows.append([label, head, summary_text(list(per_seed(cell, final("test_error")).values())),
                         summary_text(list(per_seed(cell, final("train_loss")).values()), 3), dead])
            series[f"{label}, {head}"] = metric_curves(cell, "test_error")
    a.tables.append(Table("Test error by classification function",
                          ["model", "head", "test error (%)", "final train loss", "dead classes"], rows,
                          note="The ReLU classifier is trained with cross-entropy on the rectified scores and "
                               "predicts their argmax (ties, e.g. all scores 0, go to the lowest class index). Dead "
                               "classes: classes whose rectified score is 0 on every test input."))
    a.plots["Test error per epoch (band: min–max over seeds)"] = curves(
        series, ctx.plots_dir / "test_error.png", title="Softmax vs ReLU classification function",
        ylabel="test error (%)")
    return a


REPRODUCTION = Reproduction(
    name="relu-classifier",
    summary="ReLU as the classification function (rectified scores + argmax) vs softmax",
    paper="Agarap 2018, Deep Learning using Rectified Linear Units (ReLU) (arXiv 1803.08375)",
    claim="Thresholding the final layer's raw scores with ReLU and predicting their argmax can replace softmax as the "
          "classification function of a deep network, with comparable (in the paper, slightly lower) test accuracy "
          "on MNIST, Fashion-MNIST and WDBC.",
    published=(("DL-ReLU vs DL-Softmax (FFNN, CNN; MNIST, Fashion-MNIST, WDBC)",
                "comparable accuracy, mostly slightly below softmax (paper's Tables)"),),
    parts=(Part("heads", "relu-classifier.toml", "softmax vs ReLU classification function per model"),),
    analyze=analyze,
    notes="'comparable' is made testable as: the 95% CI of the error difference lies inside ±1 point. The paper "
          "trained Keras models; here rectlab's MLP and small CNN are trained with Adam (lr 1e-3, no weight decay). "
          "A ReLU score that is <= 0 for every input gets no gradient, so whole classes can die; the table shows "
          "how often that happened.",
)
