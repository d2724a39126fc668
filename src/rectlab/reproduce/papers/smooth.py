"""``smooth-reproducibility``: prediction difference between identically configured models trained with different
seeds, for ReLU vs SmeLU vs GELU vs Swish, beside their accuracy (Shamir, Lin & Coviello 2020, arXiv 2010.09931)."""

from __future__ import annotations

import itertools

import numpy as np

from ...data import load
from ...probes import predict_proba, prediction_difference_from_probs
from ...report.plots import scatter_ci
from .. import trained
from ..core import Analysis, ClaimCheck, Context, Part, Reproduction, Table
from ..evidence import (
    Bootstrapped,
    estimate_check,
    final,
    find_cell,
    no_improvement_check,
    per_seed,
    sample,
    summary_text,
)

SMOOTH = ("smelu", "gelu", "swish")
PRIMARY = "smelu"


def _pd_matrices(ctx: Context) -> dict[str, tuple[list[int], np.ndarray]]:
    """``{activation: (seeds, (n, n) matrix of top-1 prediction difference in %)}`` over every pair of seeds."""
    part = ctx.parts["activations"]
    res = part.results
    base = res.spec.get("base", {})
    data = load(base.get("dataset", "fashion-mnist"), data_dir=ctx.execution.get("data_dir"))
    batches, labels = trained.test_batches(data, base.get("test_limit"))
    out = {}
    for cell in res.cells:
        probs = {int(r["seed"]): predict_proba(trained.load_trained(r, part.dir, data), batches) for r in cell.runs}
        seeds = sorted(probs)
        m = np.zeros((len(seeds), len(seeds)))
        for i, j in itertools.combinations(range(len(seeds)), 2):
            m[i, j] = m[j, i] = 100.0 * prediction_difference_from_probs(probs[seeds[i]], probs[seeds[j]], labels).top1
        out[cell.values["activation"]] = (seeds, m)
    return out


def mean_pd(matrix: np.ndarray, idx: np.ndarray) -> float:
    """Mean PD over the pairs of distinct models among the (resampled) seed positions ``idx``.

    The matrix is symmetric, so the mean over every ordered pair of distinct models equals the mean over pairs.
    """
    idx = np.asarray(idx)
    distinct = idx[:, None] != idx[None, :]
    return float(matrix[idx[:, None], idx[None, :]][distinct].mean()) if distinct.any() else float("nan")


def pd_evidence(base: np.ndarray, other: np.ndarray) -> Bootstrapped:
    """Mean PD of ``other`` − mean PD of ``base`` over all pairs, as a seed-level bootstrap.

    Each group's seeds are resampled with replacement (pairs that share a seed are not independent, so
    the seed, not the pair, is the unit); pairs of the same model drawn twice are left out.
    """
    return Bootstrapped(
        (tuple(range(len(base))), tuple(range(len(other)))), lambda ia, ib: mean_pd(other, ib) - mean_pd(base, ia)
    )


def analyze(ctx: Context) -> Analysis:
    a = Analysis()
    part = ctx.parts["activations"]
    res = part.results
    margin = float(ctx.option("margin"))
    pds = _pd_matrices(ctx)
    if "relu" not in pds or len(pds["relu"][0]) < 3:
        a.checks.append(
            ClaimCheck(
                "smooth activations lower the prediction difference",
                "inconclusive",
                "needs at least 3 finished ReLU runs",
            )
        )
        return a
    relu_seeds, relu_pd = pds["relu"]
    for act in SMOOTH:
        if act not in pds:
            continue
        a.checks.append(
            estimate_check(
                f"{act} models disagree less with each other than ReLU models (top-1 prediction difference)",
                pd_evidence(relu_pd, pds[act][1]),
                expect="lower",
                margin=margin,
                what=f"{act} − ReLU mean top-1 PD over all pairs",
                unit=" points",
                primary=act == PRIMARY,
                n_planned=part.spec.seeds and len(part.spec.seeds),
            )
        )
    err = final("test_error")
    for act in SMOOTH:
        a.checks.append(
            no_improvement_check(
                f"{act} is not less accurate than ReLU by more than {margin:g} point (similar accuracy)",
                sample(find_cell(res, activation=act), err),
                sample(find_cell(res, activation="relu"), err),
                margin=margin,
                what=f"ReLU − {act} test error",
                unit=" points",
                primary=False,
                gate=True,
            )
        )
    rows, points = [], {}
    for cell in res.cells:
        act = cell.values["activation"]
        if act not in pds:
            continue
        seeds, m = pds[act]
        pairs = m[np.triu_indices(len(seeds), 1)]
        errors = list(per_seed(cell, err).values())
        rows.append(
            [
                act,
                summary_text(errors),
                f"{pairs.mean():.2f} ± {pairs.std(ddof=1):.2f}" if len(pairs) > 1 else "–",
                str(len(pairs)),
            ]
        )
        points[act] = (errors, [float(np.mean(np.delete(m[i], i))) for i in range(len(seeds))])
    a.tables.append(
        Table(
            "Accuracy and top-1 prediction difference (PD) between models of the same configuration",
            ["activation", "test error (%)", "top-1 PD over all pairs (%), mean ± std", "pairs"],
            rows,
            note="PD: the share of test images on which two models of the same configuration (different seeds) predict "
            "different classes, over all pairs of seeds. Pairs sharing a seed are not independent, so the tests "
            "resample seeds (a seed-level bootstrap), not pairs.",
        )
    )
    a.plots["Accuracy vs reproducibility: test error and each model's mean PD to the others, mean and 95% CI"] = (
        scatter_ci(
            points,
            ctx.plots_dir / "pd_vs_error.png",
            title="Prediction difference vs test error",
            xlabel="test error (%)",
            ylabel="mean top-1 PD to the other seeds (%)",
        )
    )
    return a


REPRODUCTION = Reproduction(
    name="smooth-reproducibility",
    summary="ReLU vs SmeLU vs GELU vs Swish: prediction difference between identically trained models, with accuracy",
    spec="smooth-reproducibility.toml",
    parts=(Part("activations", "smooth-reproducibility.toml", "the same MLP trained with several seeds"),),
    analyze=analyze,
    notes="the paper trains large recommendation and vision models where nondeterminism alone (same seed) makes "
    "runs differ; on a CPU the same seed gives identical models, so here the seed varies (init and data "
    "order). Quick scale: a 2x256 MLP on Fashion-MNIST trained to a plateau, 10 seeds per activation (45 "
    "pairs); PD on the full test set. The margin (0.5 points of PD) is our smallest reduction worth "
    "reporting: the paper gives no single effect size.",
)
