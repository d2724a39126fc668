"""``gelu-field``: GELU against every registered activation on a residual network, ranked with CIs and Holm-corrected
comparisons: is GELU first, tied for first, or not (Lee 2023, arXiv 2305.12073)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import activations
from ...report.plots import points_with_ci
from ...report.stats import compare, holm, summarize
from ..core import Analysis, ClaimCheck, Context, Part, Reproduction, Table
from ..evidence import PLATEAU_TOL, PLATEAU_WINDOW, Sample, direction_check, final, fmt_ci, sample, summary_text

CHANCE = 90.0  # a diverged run counts as chance-level test error (10 classes)


def _finite(s: Sample) -> dict[int, float]:
    return {k: v for k, v in s.values.items() if math.isfinite(v)}


def ranking(samples: dict[str, Sample], reference: str = "gelu") -> list[dict]:
    """Every activation ranked by mean test error, with ``reference − activation`` (paired by seed) and Holm p.

    Returns:
        One dict per activation (best first): ``name, summary, diff, ci, p, p_holm, mde, status`` where ``status`` is
        "reference", "reference better", "reference worse" or "tied" (Holm-corrected p < 0.05 or not).
    """
    ref = _finite(samples[reference])
    rows: list[dict[str, Any]] = []
    for name, s in samples.items():
        values = _finite(s)
        row = {"name": name, "summary": summarize(list(values.values())), "diff": math.nan,
               "ci": (math.nan, math.nan), "p": math.nan, "p_holm": math.nan, "mde": math.nan,
               "status": "reference" if name == reference else "tied"}
        if name != reference:
            k = compare(values, ref)  # ref − this activation: negative when the reference is better
            row.update(diff=k.diff, ci=(k.ci_low, k.ci_high), p=k.p_value, mde=k.mde)
        rows.append(row)
    others = [r for r in rows if r["name"] != reference]
    for r, p in zip(others, holm([r["p"] for r in others])):
        r["p_holm"] = p
        if not math.isnan(p) and p < 0.05:
            r["status"] = "reference better" if r["diff"] < 0 else "reference worse"
    return sorted(rows, key=lambda r: (math.inf if math.isnan(r["summary"].mean) else r["summary"].mean))


def _first_check(rows: list[dict], samples: dict[str, Sample]) -> ClaimCheck:
    claim = "GELU gives the lowest test error of all the activations (first, not tied)"
    others = [r for r in rows if r["status"] != "reference"]
    if not others or not _finite(samples["gelu"]):
        return ClaimCheck(claim, "inconclusive", "no GELU runs or nothing to compare it with")
    rank = 1 + next(i for i, r in enumerate(rows) if r["name"] == "gelu")
    best = min(others, key=lambda r: r["summary"].mean)
    better = [r["name"] for r in others if r["status"] == "reference worse"]
    tied = [r["name"] for r in others if r["status"] == "tied"]
    gelu = summary_text(list(_finite(samples["gelu"]).values()))
    evidence = (f"GELU ranks {rank} of {len(rows)} by mean test error ({gelu}); vs the best other ({best['name']}): "
                f"GELU − {best['name']} {best['diff']:+.2f} points "
                f"({fmt_ci(*best['ci'])}, Holm p={best['p_holm']:.3g}, MDE {best['mde']:.2f}); "
                f"{len(others) - len(better) - len(tied)} "
                f"activations significantly worse than GELU, {len(tied)} tied, {len(better)} significantly better "
                "(paired by seed, Holm over the comparisons with GELU)")
    unconverged = [f"{n} seeds {', '.join(map(str, s.unconverged))}" for n, s in samples.items() if s.unconverged]
    rule = ("rule: reproduced (first) when GELU is significantly better than every other activation; not reproduced "
            "(not first) when one is significantly better than GELU; otherwise inconclusive (tied for first)")
    if unconverged:
        return ClaimCheck(claim, "inconclusive", f"{evidence}; not converged: the training loss of "
                          f"{'; '.join(unconverged)} had not reached a plateau (last {PLATEAU_WINDOW:.0%} of epochs "
                          f"brought more than {PLATEAU_TOL:.0%} of its fall); {rule}", n=len(_finite(samples['gelu'])),
                          evidence=evidence, blocked="not converged")
    if better:
        verdict, outcome = "not reproduced", f"not first: {', '.join(better)} significantly better than GELU"
    elif tied:
        verdict, outcome = "inconclusive", f"tied for first with {', '.join(tied)}"
    else:
        verdict, outcome = "reproduced", "first: better than every other activation"
    return ClaimCheck(claim, verdict, f"{outcome}; {evidence}; {rule}", n=len(_finite(samples["gelu"])),
                      estimate=best["diff"], ci=best["ci"], p=best["p"], mde=best["mde"], evidence=evidence,
                      unit=" points")


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    part = ctx.parts["field"]
    res = part.results
    margin = float(part.spec.extra.get("reproduce", {}).get("margin", 0.3))
    err = final("test_error")
    samples = {c.values["activation"]: sample(c, err, label=c.values["activation"], diverged=CHANCE) for c in res.cells}
    if "gelu" not in samples:
        a.checks.append(ClaimCheck("GELU gives the lowest test error of all the activations", "inconclusive",
                                   "no GELU runs"))
        return a
    rows = ranking(samples)
    a.checks.append(_first_check(rows, samples))
    if "relu" in samples:
        a.checks.append(direction_check("GELU beats ReLU", samples["relu"], samples["gelu"], expect="lower",
                                        margin=margin, what="GELU − ReLU test error", unit=" points", gate=True,
                                        primary=False))
    if "gelu-tanh" in samples:
        a.checks.append(direction_check("GELU (erf) beats its tanh approximation", samples["gelu-tanh"],
                                        samples["gelu"], expect="lower", margin=margin,
                                        what="GELU − GELU-tanh test error", unit=" points", gate=True, primary=False))
    table = []
    for i, r in enumerate(rows, 1):
        s = samples[r["name"]]
        diverged = f" ({len(s.diverged)} diverged)" if s.diverged else ""
        diff = "–" if r["name"] == "gelu" else f"{r['diff']:+.2f} [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]"
        p = "–" if r["name"] == "gelu" else f"{r['p']:.3g} ({r['p_holm']:.3g})"
        status = {"reference": "GELU", "reference better": "GELU better", "reference worse": "GELU worse",
                  "tied": "tied"}[r["status"]]
        table.append([str(i), r["name"], summary_text(list(_finite(s).values())) + diverged, diff, p, status])
    a.tables.append(Table("Activations ranked by mean test error", ["rank", "activation", "test error (%)",
                          "GELU − activation [95% CI]", "p (Holm)", "vs GELU"], table,
                          note="Differences paired by seed (paired t, or an exact sign-flip test on ties); Holm's "
                               f"correction over the {len(rows) - 1} comparisons with GELU; a diverged run counts "
                               f"as {CHANCE:g}% error (chance)."))
    grid = list(part.spec.grid.get("activation", ()))
    missing = sorted(set(activations.names()) - set(grid))
    if missing:
        a.notes.append(f"Registered activations not in this grid: {', '.join(missing)}.")
    for name in (n for n in grid if n not in samples):
        failed = [r for r in res.failed if r["cell"].get("activation") == name]
        a.notes.append(f"{name}: no finished or diverged run ({len(failed)} failed; see the failed runs of the part), "
                       "so it is left out of the ranking.")
    a.plots["Test error per activation, best first (points: seeds; bar: mean and 95% CI)"] = points_with_ci(
        {r["name"]: list(_finite(samples[r["name"]]).values()) for r in rows}, ctx.plots_dir / "gelu_field.png",
        title="Test error by activation", xlabel="test error (%)",
        reference=float(np.mean(list(_finite(samples["gelu"]).values()))))
    return a


REPRODUCTION = Reproduction(
    name="gelu-field",
    summary="GELU against every registered activation on a residual network: ranked with CIs, first / tied / not",
    paper="Lee 2023, GELU Activation Function in Deep Learning: A Comprehensive Mathematical Analysis and "
          "Performance (arXiv 2305.12073)",
    claim="On a residual convolutional network trained on CIFAR-10, CIFAR-100 and STL-10, GELU gives the best test "
          "accuracy among a broad range of activation functions.",
    published=(("residual CNN on CIFAR-10, CIFAR-100, STL-10", "GELU has the highest test accuracy of the activations "
                                                               "compared"),),
    parts=(Part("field", "gelu-field.toml", "every registered activation on a residual network"),),
    analyze=analyze,
    notes="quick scale: a residual MLP (3 post-activation blocks of width 64 with BN) on 8,000 Fashion-MNIST images "
          "for 8 epochs, 8 seeds, as a stated proxy for the paper's residual CNN on CIFAR/STL; full scale: a "
          "ResNet-20 on CIFAR-10, 5 seeds. Our field is rectlab's registry (20 activations including the linear "
          "'identity'), not the paper's exact list.",
)
