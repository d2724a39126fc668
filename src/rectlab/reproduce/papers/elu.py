"""``elu``: ELU vs ReLU vs LReLU with and without BatchNorm on a deep conv net: error, learning speed and the
per-layer mean activation (bias shift) over training (Clevert et al. 2015, arXiv 1511.07289)."""

from __future__ import annotations

from ...report.plots import curves, layer_curves, layer_profile
from ..core import Analysis, Context, Part, Reproduction, Table
from ..evidence import (
    auc,
    direction_check,
    final,
    metric_curves,
    no_improvement_check,
    per_seed,
    sample,
    site_curves,
    site_finals,
    site_mean,
    summary_text,
)

NAMES = {"relu": "ReLU", "leaky-relu": "LReLU", "elu": "ELU"}


def _cell(results, activation: str, bn: bool):
    for c in results.cells:
        if c.values.get("activation") == activation and bool(c.values["model_kwargs"].get("batch_norm")) == bn:
            return c
    return None


def _label(activation: str, bn: bool) -> str:
    return NAMES.get(activation, activation) + (" + BN" if bn else "")


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    part = ctx.parts["activations"]
    res = part.results
    err = final("test_error")
    elu, relu, lrelu = (_cell(res, act, False) for act in ("elu", "relu", "leaky-relu"))
    # bias shift: mean |per-channel mean activation| over layers, at the end of training
    shift = site_mean("act_abs_channel_mean")
    speed = auc("train_loss")
    a.checks.append(
        direction_check(
            "ELU pushes mean activations closer to zero than ReLU (smaller bias shift)",
            sample(relu, shift, label="ReLU"),
            sample(elu, shift, label="ELU"),
            expect="lower",
            margin=ctx.option("shift_margin"),
            what="ELU − ReLU mean |channel mean|",
            digits=3,
        )
    )
    a.checks.append(
        direction_check(
            "ELU learns faster than ReLU (learning speed: mean training loss over the epochs)",
            sample(relu, speed, label="ReLU"),
            sample(elu, speed, label="ELU"),
            expect="lower",
            margin=ctx.option("speed_margin"),
            what="ELU − ReLU mean training loss over the epochs",
            digits=3,
        )
    )
    margin = ctx.option("error_margin")
    for other, name in ((relu, "ReLU"), (lrelu, "LReLU")):
        a.checks.append(
            direction_check(
                f"ELU generalizes better than {name} (test error)",
                sample(other, err, label=name, diverged=90.0),
                sample(elu, err, label="ELU", diverged=90.0),
                expect="lower",
                margin=margin,
                what=f"ELU − {name} test error",
                unit=" points",
                gate=True,
            )
        )
    bn_part = ctx.parts.get("bn-conv")
    if bn_part is not None:
        cells = {bool(c.values["model_kwargs"].get("batch_norm")): c for c in bn_part.results.cells}
        a.checks.append(
            no_improvement_check(
                "BatchNorm does not improve ELU networks (a plain CNN, BN after every convolution)",
                sample(cells.get(False), err, label="ELU CNN", diverged=90.0),
                sample(cells.get(True), err, label="ELU CNN + BN", diverged=90.0),
                margin=margin,
                what="ELU+BN − ELU test error",
                unit=" points",
                gate=True,
            )
        )
    a.checks.append(
        no_improvement_check(
            "BatchNorm does not improve ELU networks (the 9-layer MLP)",
            sample(elu, err, label="ELU", diverged=90.0),
            sample(_cell(res, "elu", True), err, label="ELU + BN", diverged=90.0),
            margin=margin,
            what="ELU+BN − ELU test error",
            unit=" points",
            gate=True,
            primary=bn_part is None,
        )
    )
    a.checks.append(
        direction_check(
            "ELU (no BN) beats ReLU with BN (the paper's CIFAR-100 result)",
            per_seed(_cell(res, "relu", True), err),
            per_seed(elu, err),
            expect="lower",
            margin=margin,
            what="ELU − (ReLU+BN) test error",
            unit=" points",
            primary=False,
        )
    )

    rows = []
    for bn in (False, True):
        for act in NAMES:
            c = _cell(res, act, bn)
            if c is None:
                continue
            rows.append(
                [
                    _label(act, bn),
                    summary_text(list(per_seed(c, err).values())),
                    summary_text(list(per_seed(c, auc("train_loss")).values()), 3),
                    summary_text(list(per_seed(c, site_mean("act_mean")).values()), 3),
                    summary_text(list(per_seed(c, shift).values()), 3),
                ]
            )
    a.tables.append(
        Table(
            "Error, learning speed and bias shift (final epoch, mean over layers)",
            ["network", "test error (%)", "mean train loss over epochs", "mean activation", "mean |channel mean|"],
            rows,
            note="mean activation: the mean of each layer's outputs over a pass of the first training "
            "examples, averaged over layers; |channel mean| averages each channel's |mean|.",
        )
    )
    no_bn = {_label(act, False): _cell(res, act, False) for act in NAMES}
    a.plots["Mean activation per layer over training (no BN; one line per layer)"] = layer_curves(
        {k: site_curves(c, "act_mean") for k, c in no_bn.items() if c is not None},
        ctx.plots_dir / "bias_shift_over_training.png",
        title="Bias shift: mean activation per layer",
        ylabel="mean activation",
        zero_line=True,
    )
    a.plots["Mean activation per layer at the end of training (bars: min–max over seeds)"] = layer_profile(
        {k: site_finals(c, "act_mean") for k, c in no_bn.items() if c is not None},
        ctx.plots_dir / "bias_shift_per_layer.png",
        title="Mean activation per layer (final epoch)",
        ylabel="mean activation",
        zero_line=True,
    )
    a.plots["Training loss (band: min–max over seeds)"] = curves(
        {
            _label(act, bn): metric_curves(_cell(res, act, bn), "train_loss")
            for bn in (False, True)
            for act in NAMES
            if _cell(res, act, bn) is not None
        },
        ctx.plots_dir / "loss.png",
        title="Learning speed",
        ylabel="training loss",
        log=True,
        panels={"without BN": [_label(a_, False) for a_ in NAMES], "with BN": [_label(a_, True) for a_ in NAMES]},
    )
    return a


REPRODUCTION = Reproduction(
    name="elu",
    summary="ELU vs ReLU vs LReLU, with/without BN: error, learning speed, per-layer mean activation (bias shift)",
    spec="elu.toml",
    parts=(
        Part("activations", "elu.toml", "ReLU / LReLU / ELU x with / without BN on a deep plain net"),
        Part("bn-conv", "elu-bn.toml", "ELU without and with BatchNorm on a plain CNN"),
    ),
    analyze=analyze,
    notes="quick scale: a 9-layer plain MLP (8 hidden layers of 128, with and without BN; 10k Fashion-MNIST images, "
    "12 epochs) stands in for the paper's 11–18-layer CIFAR conv nets trained for hundreds of epochs: it keeps "
    "'more than 5 layers', the activations and the BN ablation, not the convolutions or the data. The "
    "BatchNorm claim is judged on an 8-layer plain CNN (widths 8-16-32, Fashion-MNIST pooled to 14x14, 8k "
    "images) with and without BN after every convolution; the MLP's BN comparison is secondary. The bias "
    "shift is measured on the outputs of each activation over the first 1024 training examples after every "
    "epoch (rectlab.probes.ActivationStats); learning speed is the mean training loss over the epochs (the "
    "area under the loss curve). Margins are our smallest effects worth reporting (the paper's CIFAR numbers "
    "are not comparable): 0.5 points of error (for the gain ELU must show, and for the improvement BN must not "
    "show), 0.05 of bias shift, 0.02 of mean loss.",
)
