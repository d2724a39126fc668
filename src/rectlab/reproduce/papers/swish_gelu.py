"""``swish-gelu``: ReLU vs Swish (fixed and learnable beta) vs GELU vs Mish on a deeper and a shallow model
(Ramachandran, Zoph & Le 2017, arXiv 1710.05941)."""

from __future__ import annotations

from ...report.plots import points_with_ci
from ..core import Analysis, Context, Part, Reproduction
from ..evidence import cells_where, direction_check, final, missing_check, per_seed, sample

OTHERS = (
    ("swish", "Swish (beta = 1)"),
    ("swish-learnable", "Swish (learnable beta)"),
    ("gelu", "GELU"),
    ("mish", "Mish"),
)


def _by_model(results) -> dict[str, dict[str, object]]:
    """``{model label: {activation: cell}}`` in grid order (the last model is the deeper one)."""
    out: dict[str, dict[str, object]] = {}
    for c in results.cells:
        kwargs = c.values.get("model_kwargs", {})
        name = str(c.values.get("model", results.spec.get("base", {}).get("model")))
        label = f"{name}, {kwargs['blocks']} blocks" if "blocks" in kwargs else name
        out.setdefault(label, {})[c.values["activation"]] = c
    return out


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    part = ctx.parts["activations"]
    margin = float(ctx.option("margin"))
    models = _by_model(part.results)
    if "shallow" in ctx.parts:
        models = {**{f"{k} (shallow)": v for k, v in _by_model(ctx.parts["shallow"].results).items()}, **models}
    names = list(models)
    deep = names[-1]
    err = final("test_error")
    relu = sample(models[deep].get("relu"), err, label="ReLU", diverged=90.0)
    for act, label in OTHERS:
        a.checks.append(
            direction_check(
                f"{label} beats ReLU on the deeper model ({deep})",
                relu,
                sample(models[deep].get(act), err, label=label, diverged=90.0),
                expect="lower",
                margin=margin,
                what=f"{act} − ReLU test error",
                unit=" points",
                primary=act == "swish",
                gate=True,
            )
        )
    if len(names) > 1:
        shallow = names[0]

        def gain(model: str) -> dict[int, float]:
            base, swish = per_seed(models[model].get("relu"), err), per_seed(models[model].get("swish"), err)
            return {s: v - base[s] for s, v in swish.items() if s in base}

        a.checks.append(
            direction_check(
                f"Swish's advantage over ReLU grows with depth ({deep} vs {shallow})",
                gain(shallow),
                gain(deep),
                expect="lower",
                what="gain(deep) − gain(shallow)",
                unit=" points",
                primary=False,
            )
        )
        a.plots["Test error difference to ReLU per model (negative: better than ReLU)"] = points_with_ci(
            {
                f"{act} − relu, {m}": list(_diff(models[m], act).values())
                for m in names
                for act, _ in OTHERS
                if act in models[m]
            },
            ctx.plots_dir / "diff_to_relu.png",
            title="Test error − ReLU's (same seed)",
            xlabel="difference in test error (points)",
            reference=0.0,
        )
    else:
        a.checks.append(
            missing_check("Swish's advantage grows with depth", "only one model at this scale", primary=False)
        )
    if not cells_where(part.results, activation="swish"):
        a.checks.append(missing_check("Swish beats ReLU", "no Swish runs"))
    return a


def _diff(cells: dict, act: str) -> dict[int, float]:
    base, other = per_seed(cells.get("relu"), final("test_error")), per_seed(cells.get(act), final("test_error"))
    return {s: v - base[s] for s, v in other.items() if s in base}


REPRODUCTION = Reproduction(
    name="swish-gelu",
    summary="ReLU vs Swish (fixed / learnable beta) vs GELU vs Mish on a deeper and a shallow model",
    spec="swish-gelu.toml",
    parts=(
        Part("activations", "swish-gelu.toml", "activation x model depth"),
        Part(
            "shallow", "swish-gelu-shallow.toml", "ReLU vs Swish on a one-hidden-layer MLP", scales=("smoke", "quick")
        ),
    ),
    analyze=analyze,
    notes="quick scale: the deeper model is a residual MLP with 6 blocks (14 weight layers, BN) and the shallow one a "
    "one-hidden-layer MLP, on 10k Fashion-MNIST images for 12 epochs, instead of the paper's ImageNet models "
    "(Mobile NASNet-A, Inception-ResNet-v2). Margin: 0.3 points, half the paper's smaller gain (0.6).",
)
