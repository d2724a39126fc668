"""``relu-classifier``: ReLU as the classification function instead of softmax (Agarap 2018, arXiv 1803.08375)."""

from __future__ import annotations

import torch

from ...activations import ReLUClassifier
from ...data import load
from ...report.plots import curves
from .. import trained
from ..core import Analysis, Context, Part, Reproduction, Table
from ..evidence import equivalence_check, final, find_cell, metric_curves, per_seed, sample, summary_text

HEADS = (("linear", "softmax (linear + cross-entropy)"), ("relu-normalized", "ReLU classifier (Keras loss)"))


def _dead_classes(ctx: Context, cell) -> list[float]:
    """Per run: classes whose rectified score is 0 on every test input (they can never be predicted or learn)."""
    part = ctx.parts["heads"]
    base = part.results.spec.get("base", {})
    data = load(base.get("dataset", "fashion-mnist"), data_dir=ctx.execution.get("data_dir"))
    batches, _ = trained.test_batches(data, base.get("test_limit"))
    out = []
    for run in cell.runs:
        model = trained.load_trained(run, part.dir, data)
        head = next(m for m in model.modules() if isinstance(m, ReLUClassifier))
        features: list[torch.Tensor] = []
        hook = head.register_forward_hook(lambda _mod, args, _out, into=features: into.append(args[0]))
        with torch.no_grad():
            for x in batches:
                model(x)
            peak = torch.stack([head.scores(f).max(0).values for f in features]).max(0).values
        hook.remove()
        out.append(float((peak <= 0).sum()))
    return out


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    part = ctx.parts["heads"]
    res = part.results
    margin = float(ctx.option("margin"))
    models = list(dict.fromkeys(c.values["model"] for c in res.cells if "model" in c.values)) or [None]
    rows, series = [], {}
    err = final("test_error")
    for model in models:
        sel = {"model": model} if model else {}
        label = model or part.spec.base.model
        soft, relu = find_cell(res, head="linear", **sel), find_cell(res, head="relu-normalized", **sel)
        a.checks.append(
            equivalence_check(
                f"{label}: ReLU as the classification function is comparable to softmax (within ±{margin:g} point)",
                sample(soft, err, label="softmax"),
                sample(relu, err, label="ReLU classifier", diverged=90.0),
                margin=margin,
                what="ReLU-classifier − softmax test error",
                unit=" points",
                gate=True,
            )
        )
        for head, name in HEADS:
            cell = soft if head == "linear" else relu
            if cell is None:
                continue
            dead = _dead_classes(ctx, cell) if head != "linear" else []
            dead_text = (
                f"{summary_text(dead, 1)}; runs with a dead class: {sum(d > 0 for d in dead)}/{len(dead)}"
                if dead
                else "–"
            )
            rows.append(
                [
                    label,
                    name,
                    summary_text(list(per_seed(cell, err).values())),
                    summary_text(list(per_seed(cell, final("train_loss")).values()), 3),
                    dead_text,
                    str(len(cell.diverged)),
                ]
            )
            series[f"{label}, {name}"] = metric_curves(cell, "test_error")
    a.tables.append(
        Table(
            "Test error by classification function",
            ["model", "head", "test error (%)", "final train loss", "dead classes", "diverged"],
            rows,
            note="The ReLU classifier predicts the argmax of its rectified scores (ties, e.g. all "
            "scores 0, go to the lowest class index). Dead classes: classes whose rectified "
            "score is 0 on every test input; they get no gradient and are never predicted.",
        )
    )
    a.plots["Test error per epoch (band: min–max over seeds)"] = curves(
        series,
        ctx.plots_dir / "test_error.png",
        title="Softmax vs ReLU classification function",
        ylabel="test error (%)",
    )
    return a


REPRODUCTION = Reproduction(
    name="relu-classifier",
    summary="ReLU as the classification function (Agarap's Keras loss on ReLU outputs) vs softmax, 3x512 FFNN",
    spec="relu-classifier.toml",
    parts=(Part("heads", "relu-classifier.toml", "softmax vs ReLU classification function per model"),),
    analyze=analyze,
    notes="follows Agarap's Keras set-up: Dense(10, relu) trained with categorical_crossentropy, which divides the "
    "ReLU outputs by their sum (no softmax) and clips them to [1e-7, 1 − 1e-7]; a 3x512 FFNN with dropout 0.1; "
    "Adam "
    "(lr 1e-3), batch 256, Keras' Glorot-uniform init with zero biases. Differences: a cosine learning-rate "
    "decay (so runs reach a plateau in 12 epochs), the first 20,000 training images at quick scale, and "
    "the FFNN only (his CNN runs at full scale). 'Comparable' is made testable as: the difference in test "
    "error lies within ±1 point (two one-sided tests). An all-zero ReLU output, which Keras would divide 0 by 0 "
    "on, gets the clipped value instead (its gradient is 0 either way).",
)
