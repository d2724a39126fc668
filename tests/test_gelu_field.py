"""gelu-field: the grid covers every registered activation; the ranking and the first / tied / not rule."""

from __future__ import annotations

import numpy as np

from rectlab import activations, reproduce
from rectlab.reproduce.core import studies_dir
from rectlab.reproduce.evidence import Sample
from rectlab.reproduce.papers.gelu_field import _first_check, ranking
from rectlab.study import load_spec


def test_the_field_is_every_registered_activation() -> None:
    for scale in ("quick", "full"):
        spec = load_spec(studies_dir() / "gelu-field.toml", scale=scale)
        assert set(spec.grid["activation"]) == set(activations.names()), scale
        assert spec.baseline == {"activation": "gelu"}
    assert "gelu-field" in reproduce.names()


def _samples(means: dict[str, float], sd: float = 0.05, n: int = 8) -> dict[str, Sample]:
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 1.0, n)  # shared by every activation: pairing by seed removes it
    return {name: Sample({s: m + seed_effect[s] + rng.normal(0, sd) for s in range(n)}, name)
            for name, m in means.items()}


def test_gelu_first_tied_or_not() -> None:
    first = _samples({"gelu": 10.0, "relu": 11.0, "swish": 10.8})
    rows = ranking(first)
    assert [r["name"] for r in rows] == ["gelu", "swish", "relu"]
    assert {r["name"]: r["status"] for r in rows[1:]} == {"swish": "reference better", "relu": "reference better"}
    assert _first_check(rows, first).verdict == "reproduced"

    tied = _samples({"gelu": 10.0, "relu": 11.0, "swish": 10.0})
    check = _first_check(ranking(tied), tied)
    assert check.verdict == "inconclusive" and "tied for first with swish" in check.reason

    beaten = _samples({"gelu": 10.5, "relu": 11.0, "mish": 10.0})
    check = _first_check(ranking(beaten), beaten)
    assert check.verdict == "not reproduced" and "mish significantly better than GELU" in check.reason
    assert [r["name"] for r in ranking(beaten)][0] == "mish"


def test_unconverged_runs_block_the_ranking_claim() -> None:
    samples = _samples({"gelu": 10.0, "relu": 11.0})
    samples["relu"].unconverged = [3]
    check = _first_check(ranking(samples), samples)
    assert check.verdict == "inconclusive" and "not converged" in check.reason and "relu seeds 3" in check.reason
