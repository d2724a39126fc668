"""``swish-gelu``: ReLU vs Swish (fixed and learnable beta) vs GELU vs Mish on a shallow and a deeper model
(Ramachandran, Zoph & Le 2017, arXiv 1710.05941)."""

from __future__ import annotations

from ...report.plots import points_with_ci
from ..core import Analysis, Context, Part, Reproduction
from ..evidence import direction_check, final, find_cell, missing_check, per_seed

OTHERS = (("swish", "Swish (beta = 1)"), ("swish-learnable", "Swish (learnable beta)"), ("gelu", "GELU"),
          ("mish", "Mish"))


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    res = ctx.parts["activations"].results
    spec = ctx.parts["activations"].spec
    models = list(spec.grid.get("model", (spec.base.model,)))
    deep, shallow = models[-1], (models[0] if len(models) > 1 else None)
    err = final("test_error")

    def values(act: str, model: str) -> dict[int, float]:
        sel = {"model": model} if "model" in spec.grid else {}
        return per_seed(find_cell(res, activation=act, **sel), err)

    for act, label in OTHERS:
        a.checks.append(direction_check(f"{label} beats ReLU on the deeper model ({deep})", values("relu", deep),
                                        values(act, deep), expect="lower", what=f"{act} − ReLU test error",
                                        unit=" points", primary=act == "swish"))
    if shallow is not None:
        gain_deep = {s: v - values("relu", deep).get(s, float("nan")) for s, v in values("swish", deep).items()}
        gain_shallow = {s: v - values("relu", shallow).get(s, float("nan")) for s, v in
                        values("swish", shallow).items()}
        a.checks.append(direction_check(
            f"Swish's advantage over ReLU grows with depth ({deep} vs {shallow})", gain_shallow, gain_deep,
            expect="lower", what="gain(deep) − gain(shallow)", unit=" points", primary=False))
        groups = {f"{act} − relu, {m}": [v - values("relu", m)[s] for s, v in values(act, m).items()
                                         if s in values("relu", m)]
                  for m in models for act, _ in OTHERS}
        a.plots["Test error difference to ReLU per model (negative: better than ReLU)"] = points_with_ci(
            groups, ctx.plots_dir / "diff_to_relu.png", title="Test error − ReLU's (same seed)",
            xlabel="difference in test error (points)", reference=0.0)
    else:
        a.checks.append(missing_check("Swish's advantage grows with depth", "only one model at this scale",
                                      primary=False))
    return a


REPRODUCTION = Reproduction(
    name="swish-gelu",
    summary="ReLU vs Swish (fixed / learnable beta) vs GELU vs Mish on a shallow and a deeper model",
    paper="Ramachandran, Zoph & Le 2017, Searching for Activation Functions (arXiv 1710.05941); GELU (Hendrycks & "
          "Gimpel 2016, arXiv 1606.08415); Mish (Misra 2019, arXiv 1908.08681)",
    claim="Swish tends to work better than ReLU on deeper models across challenging datasets: replacing ReLU by "
          "Swish improves ImageNet top-1 accuracy by 0.9% for Mobile NASNet-A and 0.6% for Inception-ResNet-v2.",
    published=(("Mobile NASNet-A, ImageNet top-1", "+0.9% accuracy with Swish"),
               ("Inception-ResNet-v2, ImageNet top-1", "+0.6% accuracy with Swish")),
    parts=(Part("activations", "swish-gelu.toml", "activation x model depth"),),
    analyze=analyze,
    notes="a small CNN (shallow) and a narrow ResNet-20 (deeper) on a Fashion-MNIST subset at quick scale; the paper's "
          "gains are fractions of a point on ImageNet-scale models, far below what a quick run can resolve.",
)
