"""gelu-field: the grid covers every registered activation but numerical duplicates; the best-of rule."""

from __future__ import annotations

import numpy as np
import torch

from rectlab import activations, reproduce
from rectlab.reproduce.core import studies_dir
from rectlab.reproduce.evidence import Sample, finalize
from rectlab.reproduce.papers.gelu_field import best_check, ranking
from rectlab.study import load_spec


def test_the_field_is_every_registered_activation_but_duplicates() -> None:
    twins = dict(reproduce.get("gelu-field").design().option("duplicates"))
    for scale in ("quick", "full"):
        spec = load_spec(studies_dir() / "gelu-field.toml", scale=scale)
        grid = set(spec.grid["activation"])
        assert grid | set(twins) == set(activations.names()), scale
        assert not grid & set(twins) and set(twins.values()) <= grid
        assert spec.baseline == {"activation": "gelu"}
    x = torch.linspace(-6, 6, 2001)
    with torch.no_grad():
        for duplicate, twin in twins.items():  # each left-out activation computes its twin's function
            a, b = activations.create(duplicate, channels=1)(x), activations.create(twin, channels=1)(x)
            assert float((a - b).abs().max()) < 1e-3, (duplicate, twin)


def _samples(means: dict[str, float], sd: float = 0.05, n: int = 8) -> dict[str, Sample]:
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 1.0, n)  # shared by every activation: pairing by seed removes it
    return {
        name: Sample({s: m + seed_effect[s] + rng.normal(0, sd) for s in range(n)}, name) for name, m in means.items()
    }


def test_gelu_within_the_margin_of_the_best_or_not() -> None:
    first = _samples({"gelu": 10.0, "relu": 11.0, "swish": 10.8})
    assert [r["name"] for r in ranking(first)] == ["gelu", "swish", "relu"]
    [check] = finalize([best_check(first, margin=0.3)], resamples=200)
    assert check.verdict == "reproduced" and "swish" in check.evidence and check.stability is not None

    tied = _samples({"gelu": 10.0, "relu": 11.0, "swish": 10.0})
    tied_check = finalize([best_check(tied, margin=0.3)], resamples=200)[0]
    assert tied_check.verdict == "reproduced"  # tied with the best: within the margin

    beaten = _samples({"gelu": 10.5, "relu": 11.0, "mish": 10.0})
    [check] = finalize([best_check(beaten, margin=0.3)], resamples=200)
    assert check.verdict == "contradicted" and "mish" in check.evidence
    assert [r["name"] for r in ranking(beaten)][0] == "mish"

    noisy = _samples({"gelu": 10.2, "relu": 11.0, "mish": 10.0}, sd=0.4, n=5)
    assert finalize([best_check(noisy, margin=0.3)], resamples=200)[0].verdict == "inconclusive"


def test_unconverged_runs_block_the_claim() -> None:
    samples = _samples({"gelu": 10.0, "relu": 11.0})
    samples["relu"].unconverged = [3]
    check = best_check(samples, margin=0.3)
    assert check.verdict == "inconclusive" and "not converged" in check.reason and "relu seeds 3" in check.reason
