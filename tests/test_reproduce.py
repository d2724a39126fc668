"""Reproductions: every study end to end at smoke scale, the verdict rules, the XOR runner, pruning, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from rectlab import reproduce
from rectlab.report.stats import wilson
from rectlab.reproduce.core import ClaimCheck, overall_verdict, studies_dir
from rectlab.reproduce.evidence import (
    direction_check,
    equivalence_check,
    finalize,
    no_improvement_check,
    no_worse_check,
    rate_check,
)
from rectlab.reproduce.papers import ALL
from rectlab.reproduce.vectorized.xor import XOR_INPUTS, XOR_MODELS, XOR_Y, XorSetup, adam_step, load_setup, run_xor
from rectlab.study import load_spec, parse_spec
from rectlab.training.pruning import prune_, restore_, sparsity
from test_repo_text import FORBIDDEN

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is faster on a shared CPU


# -- every study at smoke scale ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [r.name for r in ALL])
def test_study_runs_at_smoke_scale_and_reports_a_verdict(name, tmp_path) -> None:
    report = reproduce.run(name, "smoke", tmp_path, progress=False, command=f"rectlab reproduce {name}")
    assert report.verdict in reproduce.VERDICTS and report.reason
    assert report.checks and all(c.verdict in reproduce.VERDICTS for c in report.checks)
    md = report.markdown.read_text()
    repro = reproduce.get(name)
    assert f"Reproduction {name}: {report.verdict}" in md
    assert repro.published[0][1] in md and "Claims checked" in md and "95% CI" in md
    pngs = list((tmp_path / "plots").glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    html = report.html.read_text()
    assert html.count("data:image/png;base64,") >= len(pngs)
    record = json.loads(report.json.read_text())
    assert record["verdict"] == report.verdict and record["command"] == f"rectlab reproduce {name}"
    assert set(record["runs"]) >= {"done", "diverged", "stalled", "failed"} and isinstance(record["converged"], bool)
    assert len(record["spec_digest"]) == 16 and record["n_planned"] and record["cpu"]
    assert record["design"]["alpha"] == 0.05 and record["rule"].startswith("The study's verdict")
    for check in record["checks"]:
        assert set(check) >= {
            "claim",
            "primary",
            "verdict",
            "reason",
            "n",
            "n_planned",
            "estimate",
            "ci",
            "p",
            "p_holm",
            "alpha",
            "mde",
            "margin",
            "stability",
            "fragile",
        }
        assert check["stability"] is None or 0 <= check["stability"] <= 1
    for part in (p for p in repro.parts if "smoke" in p.scales):
        if part.stage == 2 and record["design"]["decided_at_stage"] == 1:
            assert part.name not in record["parts"]  # a two-stage design decided at the first look
            continue
        assert (tmp_path / part.name / "report.html").is_file()
        runs = record["parts"][part.name]["runs"]
        assert runs["done"] + runs["stalled"] > 0 and runs["failed"] == 0


def test_rerun_skips_finished_runs_and_shows_the_recorded_budget_check(tmp_path, capsys) -> None:
    import shutil

    from rectlab.cli.main import main
    from rectlab.reproduce.budget import BUDGET_FILE, load_budget

    specs = tmp_path / "specs"
    shutil.copytree(studies_dir(), specs)
    (specs / BUDGET_FILE).unlink(missing_ok=True)
    out = tmp_path / "helu"
    first = reproduce.run("helu", "smoke", out, studies=specs, progress=False)
    assert "no budget check recorded" in first.markdown.read_text()
    db = (out / "activations" / "results.db").stat().st_mtime_ns
    runs_before = sorted(p.name for p in (out / "activations" / "runs").iterdir())
    args = [
        "reproduce",
        "helu",
        "--scale",
        "smoke",
        "--budget-check",
        "--studies",
        str(specs),
        "--out",
        str(out),
        "--no-progress",
        "--executor",
        "local",
    ]
    assert main(args) == 0
    assert "helu.toml@smoke:" in capsys.readouterr().out
    record = load_budget(specs)["helu.toml@smoke"]
    assert record["epochs"] == [1, 2] and record["seeds"] == 2 and record["tolerance"] == 0.15
    assert len(record["cells"]) == 2 and all(
        {"budget", "doubled", "shift", "passed"} <= set(v) for v in record["cells"].values()
    )
    assert not (out / "budget" / "activations" / "x1").exists()  # the budget's own runs were reused
    second = reproduce.run("helu", "smoke", out, studies=specs, progress=False)
    assert second.verdict == first.verdict and [c.reason for c in second.checks] == [c.reason for c in first.checks]
    assert sorted(p.name for p in (out / "activations" / "runs").iterdir()) == runs_before
    assert db <= (out / "activations" / "results.db").stat().st_mtime_ns
    md = second.markdown.read_text()
    assert "Budget check:" in md and "at twice the budget" in md


def test_every_spec_parses_at_every_scale() -> None:
    folder = studies_dir()
    for repro in ALL:
        for scale in reproduce.SCALES:
            if repro.runner is not None:
                assert load_setup(folder / "xor-prelu.toml", scale).trials >= 1
            for part in (p for p in repro.parts if scale in p.scales):
                spec = load_spec(folder / part.spec, scale=scale)
                assert spec.seeds and spec.grid, (part.spec, scale)
                if scale == "smoke":
                    assert spec.base.dataset == "digits" and spec.base.epochs <= 3
                if scale == "quick":
                    assert len(spec.seeds) >= 8, (part.spec, "accuracy claims need at least 8 seeds at quick scale")
                if scale == "full":
                    assert len(spec.seeds) >= 5


def test_scale_tables_can_narrow_the_grid() -> None:
    text = """
[study]
seeds = 2
[grid]
activation = ["relu", "gelu"]
init = ["he", "xavier"]
[scales.quick]
epochs = 2
[scales.quick.grid]
activation = ["relu"]
"""
    assert parse_spec(text).grid == {"activation": ("relu", "gelu"), "init": ("he", "xavier")}
    quick = parse_spec(text, scale="quick")
    assert quick.grid == {"activation": ("relu",), "init": ("he", "xavier")} and quick.base.epochs == 2


# -- verdict rules -------------------------------------------------------------------------------------------


def _noisy(n: int, effect: float, sd: float = 0.3, seed: int = 0) -> tuple[dict[int, float], dict[int, float]]:
    """Synthetic per-seed values: a baseline around 10 and other = baseline + effect + paired noise."""
    rng = np.random.default_rng(seed)
    base = {s: 10.0 + rng.normal(0, 1.0) for s in range(n)}
    return base, {s: v + effect + rng.normal(0, sd) for s, v in base.items()}


def test_five_labels_on_synthetic_seeds() -> None:
    base, other = _noisy(10, -1.0)  # a known gain of 1 point, margin 0.5
    known = direction_check("gain", base, other, margin=0.5, unit=" points")
    assert known.verdict == "reproduced" and known.n == 10 and known.ci[1] < 0 and known.mde < 1.0
    base, other = _noisy(30, -0.2, sd=0.2)  # a real gain, smaller than the paper's
    weaker = direction_check("gain", base, other, margin=0.5)
    assert weaker.verdict == "weaker than claimed" and weaker.ci[0] > -0.5 and weaker.ci[1] < 0
    base, other = _noisy(40, 0.0)  # no effect, many seeds: the CI rules out a gain of the margin's size
    null = direction_check("gain", base, other, margin=0.5)
    assert null.verdict == "not reproduced" and "not significant" in null.reason and null.ci[0] > -0.5
    base, worse = _noisy(8, 2.0)
    opposite = direction_check("gain", base, worse, margin=0.5)
    assert opposite.verdict == "contradicted" and "opposite" in opposite.reason
    base, other = _noisy(6, -0.4, sd=1.0)
    open_ = direction_check("gain", base, other, margin=0.5)
    assert open_.verdict == "inconclusive" and "per group would decide it" in open_.reason and open_.needed > 6
    base, other = _noisy(2, -1.0)  # two seeds: no test at all
    tiny = direction_check("gain", base, other, margin=0.5)
    assert tiny.verdict == "inconclusive" and "too small" in tiny.reason and tiny.needed == 3
    with pytest.raises(ValueError, match="expect"):
        direction_check("c", base, other, expect="smaller")


def test_significant_on_p_alone_is_now_weaker_than_claimed() -> None:
    # a gain significant after Holm whose interval excludes the margin: the earlier rule said "reproduced" on p
    # alone; it is significant, but smaller than the paper's
    base = {s: 10.0 + 0.5 * s for s in range(8)}
    other = {s: v - 0.24 + 0.04 * (s % 3) + 0.01 * s for s, v in base.items()}
    [check] = finalize([direction_check("ELU lowers the error", base, other, margin=0.5)])
    assert check.p < 0.001 and check.ci[1] < 0 and check.ci[0] > -0.5
    assert check.verdict == "weaker than claimed"


def test_rate_claim_at_fifty_percent() -> None:
    [half] = finalize([rate_check("most 30-layer Xavier runs stall", 12, 24, threshold=0.5, level=0.9)])
    assert half.verdict == "not reproduced" and half.estimate == 0.5 and half.ci[0] < 0.5 < half.ci[1] < 0.9
    assert half.stability is not None and half.stability > 0.5
    most = finalize([rate_check("stalls", 17, 24, threshold=0.5, level=0.9)])[0]
    assert most.verdict in ("weaker than claimed", "inconclusive")
    assert finalize([rate_check("stalls", 24, 24, threshold=0.5, level=0.9)])[0].verdict == "reproduced"
    assert finalize([rate_check("stalls", 1, 24, threshold=0.5, level=0.9)])[0].verdict == "contradicted"
    with pytest.raises(ValueError, match="beyond the threshold"):
        rate_check("c", 1, 2, threshold=0.5, level=0.4)


def test_stability_marks_fragile_labels() -> None:
    base, other = _noisy(12, -1.0, sd=0.3)
    [solid] = finalize([direction_check("solid", base, other, margin=0.5)])
    assert solid.stability is not None and solid.stability > 0.9 and not solid.fragile
    rng = np.random.default_rng(5)
    base = {s: 10.0 + rng.normal() for s in range(6)}
    edge = {s: v - 0.35 + rng.normal(0, 0.3) for s, v in base.items()}  # an interval near its boundaries
    [c] = finalize([direction_check("edge", base, edge, margin=0.5)])
    assert c.stability is not None and c.fragile == (c.stability < 0.8)
    assert finalize([direction_check("none", {0: 1.0}, {0: 2.0}, margin=0.5)])[0].stability is None


def test_ties_never_give_p_zero() -> None:
    base = {s: 5.0 + s for s in range(5)}
    five = direction_check("fewer dead units", base, {s: v - 1.0 for s, v in base.items()}, margin=0.5)
    assert five.p == pytest.approx(2 / 2**5) and five.verdict == "inconclusive"  # 5 identical pairs cannot decide
    base8 = {s: 5.0 + s for s in range(8)}
    eight = direction_check("fewer dead units", base8, {s: v - 1.0 for s, v in base8.items()}, margin=0.5)
    assert eight.p == pytest.approx(2 / 2**8) and eight.verdict == "reproduced"
    same = direction_check("c", base8, dict(base8), margin=0.5)
    assert same.p == 1.0 and same.verdict == "not reproduced"  # exactly no effect, the CI is the point 0


def test_holm_is_applied_across_primary_checks() -> None:
    base = {s: 10.0 + 0.5 * s for s in range(8)}
    # two primary checks each with p in (0.025, 0.05): significant alone, not after Holm over two checks
    diffs = [-1.0, -0.2, -0.8, -0.5, 0.4, -0.7, 0.1, -0.6]  # paired t: p = 0.044
    a = {s: base[s] + d for s, d in enumerate(diffs)}
    checks = [
        direction_check("a", base, a),
        direction_check("b", base, a),
        direction_check("side", base, a, primary=False),
    ]
    assert all(0.025 < c.p < 0.05 and c.verdict == "reproduced" for c in checks)
    final_ = finalize(checks)
    assert [c.p_holm for c in final_[:2]] == pytest.approx([2 * checks[0].p] * 2)
    assert [c.verdict for c in final_] == ["inconclusive", "inconclusive", "reproduced"]
    assert "Holm p=" in final_[0].reason and math.isnan(final_[2].p_holm)
    # the interval shown is the one the label used: at Holm's level (97.5%), it includes 0
    assert [c.alpha for c in final_] == pytest.approx([0.025, 0.025, 0.05])
    assert final_[0].ci[0] < 0 < final_[0].ci[1] and final_[2].ci[1] < 0
    assert final_[0].mde > final_[2].mde and "97.5% CI" in final_[0].reason


def test_convergence_gate_and_diverged_runs() -> None:
    from types import SimpleNamespace

    from rectlab.reproduce.evidence import final, sample

    def run(seed: int, losses: list[float], error: float) -> dict:
        return {"seed": seed, "config": {}, "epochs": [{"train_loss": v, "test_error": error} for v in losses]}

    flat = [2.0, 0.6, 0.4, 0.35, 0.34]  # the last epoch brings 0.01 of a 1.66 fall: a plateau
    falling = [2.0, 1.6, 1.2, 0.8, 0.4]  # still falling fast
    base = SimpleNamespace(label="relu", diverged=[], runs=[run(s, flat, 10.0 + 0.1 * s) for s in range(4)])
    other = SimpleNamespace(
        label="prelu",
        runs=[run(s, flat, 9.0 + 0.1 * s) for s in range(3)],
        diverged=[{"seed": 3, "extras": {"diverged": {"epoch": 2, "step": 40, "loss": "nan"}}}],
    )
    checks = direction_check(
        "lower error", sample(base, final("test_error")), sample(other, final("test_error"), diverged=90.0), gate=True
    )
    assert checks.verdict == "inconclusive" and "prelu run(s) diverged (seed 3: epoch 2, step 40)" in checks.reason
    assert checks.n == 4 and checks.estimate > 0  # the diverged run counts as 90% error
    slow = SimpleNamespace(label="relu", diverged=[], runs=[run(s, falling, 10.0) for s in range(4)])
    gated = direction_check(
        "lower error", sample(slow, final("test_error")), sample(base, final("test_error")), gate=True
    )
    assert gated.verdict == "inconclusive"
    assert "not converged" in gated.reason and "relu seeds 0, 1, 2, 3" in gated.reason


def test_equivalence_and_no_improvement_rules() -> None:
    base, close = _noisy(12, 0.0, sd=0.2)
    eq = equivalence_check("c", base, close, margin=1.0)
    assert eq.verdict == "reproduced" and "90% CI" in eq.reason  # one-sided tests: the 1 - 2 alpha interval
    far = {s: v + 3.0 + 0.01 * s for s, v in base.items()}
    assert equivalence_check("c", base, far, margin=1.0).verdict == "contradicted"
    assert equivalence_check("c", base, {0: 5.0, 1: 15.0, 2: 9.0}, margin=1.0).verdict == "inconclusive"
    assert no_improvement_check("c", base, close, margin=0.5).verdict == "reproduced"
    better = {s: v - 2 + 0.01 * s for s, v in base.items()}
    assert no_improvement_check("c", base, better, margin=0.5).verdict == "contradicted"
    assert no_worse_check("c", base, close, margin=0.5).verdict == "reproduced"


def test_overall_verdict() -> None:
    ok, weak, no, bad, maybe = (
        ClaimCheck("a", "reproduced", "r"),
        ClaimCheck("w", "weaker than claimed", "r"),
        ClaimCheck("b", "not reproduced", "r"),
        ClaimCheck("x", "contradicted", "r"),
        ClaimCheck("c", "inconclusive", "r"),
    )
    side = ClaimCheck("d", "not reproduced", "r", primary=False)
    assert overall_verdict([ok, side])[0] == "reproduced"
    assert overall_verdict([ok, weak])[0] == "weaker than claimed"
    assert overall_verdict([ok, weak, maybe])[0] == "inconclusive"
    assert "1 of 3 primary claims reproduced" in overall_verdict([ok, weak, maybe])[1]
    assert overall_verdict([ok, no, maybe])[0] == "not reproduced"
    assert overall_verdict([ok, no, bad])[0] == "contradicted"
    assert overall_verdict([side])[0] == "inconclusive"
    with pytest.raises(ValueError, match="verdict must be one of"):
        ClaimCheck("x", "maybe", "r")


def test_stalled_runs_are_counted_and_never_converged() -> None:
    from rectlab.report.collect import converged, stalled

    chance = math.log(10)
    at_chance = {
        "seed": 0,
        "extras": {"num_classes": 10},
        "epochs": [{"train_loss": chance * f} for f in (1.01, 1.0, 0.99, 0.98)],
    }
    learning = {"seed": 1, "extras": {"num_classes": 10}, "epochs": [{"train_loss": v} for v in (2.2, 1.5, 1.4, 1.39)]}
    assert stalled(at_chance) and not converged(at_chance)
    assert not stalled(learning) and converged(learning)
    unknown = {"seed": 2, "extras": {}, "config": {"dataset": "imagefolder"}, "epochs": at_chance["epochs"]}
    assert not stalled(unknown)  # the number of classes is unknown: no claim of a stall


def test_each_claim_is_stated_once_in_its_spec() -> None:
    import dataclasses

    from rectlab.reproduce.core import Reproduction, claim_table

    assert not {"claim", "paper", "published"} & {f.name for f in dataclasses.fields(Reproduction)}
    for repro in ALL:
        table = claim_table(repro.spec)
        assert repro.claim == table["claim"] and repro.paper == table["paper"] and repro.published
        assert repro.design().alpha == 0.05


# -- XOR ---------------------------------------------------------------------------------------------------


def test_batched_adam_matches_torch_adam() -> None:
    torch.manual_seed(0)
    init = {"w": torch.randn(3, 2, dtype=torch.float64), "a": torch.randn(3, dtype=torch.float64)}
    lrs = torch.tensor([0.001, 0.1, 1.0], dtype=torch.float64)
    ours = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    state: dict = {}
    x = XOR_INPUTS["bipolar"]
    for _ in range(25):
        loss = ((XOR_MODELS["prelu"].forward(ours, x) - XOR_Y) ** 2).mean(1).sum()
        grads = torch.autograd.grad(loss, list(ours.values()))
        with torch.no_grad():
            adam_step(ours, dict(zip(ours, grads)), state, lrs)
    for row, lr in enumerate(lrs.tolist()):
        ref = {k: v[row : row + 1].clone().requires_grad_(True) for k, v in init.items()}
        opt = torch.optim.Adam(ref.values(), lr=lr)
        for _ in range(25):
            opt.zero_grad()
            ((XOR_MODELS["prelu"].forward(ref, x) - XOR_Y) ** 2).mean().backward()
            opt.step()
        for k in init:
            torch.testing.assert_close(ours[k][row : row + 1].detach(), ref[k].detach(), rtol=1e-10, atol=1e-12)


def test_prelu_unit_represents_xor_exactly() -> None:
    # The paper's Figure 1: w = (1, -1), a = -1 for inputs in {0, 1}; halve the weights for {-1, 1}.
    for inputs, w in (("binary", 1.0), ("bipolar", 0.5)):
        params = {"w": torch.tensor([[w, -w]], dtype=torch.float64), "a": torch.tensor([-1.0], dtype=torch.float64)}
        assert torch.equal(XOR_MODELS["prelu"].forward(params, XOR_INPUTS[inputs])[0], XOR_Y)


def test_run_xor_is_deterministic_and_counts_successes() -> None:
    setup = XorSetup(trials=8, epochs=60, lrs=(0.01, 0.3), models=("prelu", "mlp-tanh"))
    a, b = run_xor(setup), run_xor(setup)
    assert a.success == b.success and set(a.success) == {"prelu", "mlp-tanh"}
    assert all(0 <= s <= 8 for s in a.success["prelu"]) and a.n_params == {"prelu": 3, "mlp-tanh": 9}
    assert len(a.rate("prelu")) == 2 and all(lr in setup.lrs for lr in a.full_success_lrs("prelu"))
    with pytest.raises(ValueError, match="unknown XOR model"):
        XorSetup(models=("prelu", "tanh-net"))
    with pytest.raises(ValueError, match="inputs must be"):
        XorSetup(inputs="ternary")


def test_wilson_interval() -> None:
    lo, hi = wilson(100, 100)
    assert hi == 1.0 and lo == pytest.approx(0.963, abs=5e-4)
    lo, hi = wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_xor_setup_rejects_unknown_keys(tmp_path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("[xor]\ntrails = 3\n[scales.quick]\n")
    with pytest.raises(ValueError, match="unknown key.*trails.*valid keys"):
        load_setup(path, "quick")
    path.write_text("[xor]\n[scales.quick]\n")
    with pytest.raises(ValueError, match="valid scales: quick"):
        load_setup(path, "full")


# -- pruning -----------------------------------------------------------------------------------------------


def test_global_magnitude_pruning_keeps_its_masks_and_resumes() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    keys = set(model.state_dict())
    assert prune_(model, 0.8) == pytest.approx(0.8, abs=0.001)
    assert set(model.state_dict()) == keys  # dense layout: checkpoints and optimizer states are unchanged
    zero = model[0].weight == 0
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 1, 8, 8)).sum().backward()
        opt.step()
    model(torch.randn(1, 1, 8, 8))  # every forward re-applies the mask
    assert torch.equal(model[0].weight == 0, zero)
    fresh = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    fresh.load_state_dict(model.state_dict())
    assert restore_(fresh) == pytest.approx(sparsity(model))
    fresh[0].weight.data += 1.0
    fresh(torch.randn(1, 1, 8, 8))
    assert torch.equal(fresh[0].weight == 0, zero)
    with pytest.raises(ValueError, match="sparsity must be"):
        prune_(model, 1.0)


def test_pruned_run_resumes_to_the_same_metrics(tmp_path) -> None:
    from rectlab.training.config import TrainConfig
    from rectlab.training.loop import train_one

    cfg = TrainConfig(
        model="mlp",
        model_kwargs={"hidden": [16]},
        dataset="digits",
        epochs=3,
        batch_size=64,
        train_limit=256,
        test_limit=128,
        device="cpu",
        prune_sparsity=0.7,
        prune_epoch=1,
    )
    whole = train_one(cfg, tmp_path / "whole")
    assert [m.get("sparsity") for m in whole.metrics][0] == pytest.approx(0.7, abs=0.01)
    assert whole.metrics[-1]["sparsity"] == pytest.approx(0.7, abs=0.01)

    def interrupt(state) -> None:
        if state.epoch == 2:  # before epoch 2's checkpoint: the resumed run restarts from the pruned epoch 1
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_one(cfg, tmp_path / "resumed", callbacks=[interrupt])
    resumed = train_one(cfg, tmp_path / "resumed")
    assert resumed.resumed_from_epoch == 1
    assert [m["test_error"] for m in resumed.metrics] == [m["test_error"] for m in whole.metrics]
    assert [m["train_loss"] for m in resumed.metrics] == [m["train_loss"] for m in whole.metrics]


# -- CLI and errors ----------------------------------------------------------------------------------------


def test_cli_lists_reproductions_and_rejects_unknown_names(capsys) -> None:
    from rectlab.cli.main import main

    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(r.name in out for r in ALL)
    assert main(["reproduce", "prelux"]) == 2
    err = capsys.readouterr().err
    assert "unknown reproduction 'prelux'" in err and "Did you mean 'prelu'" in err and "xor-prelu" in err
    assert main(["reproduce"]) == 2
    assert "--list" in capsys.readouterr().err
    assert main(["list", "studies"]) == 0
    assert "init-depth" in capsys.readouterr().out


def test_cli_runs_a_reproduction(tmp_path, capsys) -> None:
    from rectlab.cli.main import main

    assert main(["reproduce", "xor-prelu", "--scale", "smoke", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "xor-prelu (smoke):" in out and "reproduction.html" in out
    assert (tmp_path / "xor.json").is_file() and (tmp_path / "reproduction.md").is_file()


def test_missing_studies_folder_is_explained(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="--studies DIR or set RECTLAB_STUDIES"):
        studies_dir(tmp_path)
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        reproduce.run("helu", "huge", tmp_path)


def test_relu_normalized_head_is_kerass_categorical_crossentropy() -> None:
    from rectlab.activations import ReLUClassifier

    torch.manual_seed(0)
    head = ReLUClassifier(6, 4, normalize=True)
    h, y = torch.randn(64, 6), torch.randint(0, 4, (64,))
    r = torch.relu(head.fc(h))
    keras = -(r / r.sum(1, keepdim=True)).clamp(1e-7, 1 - 1e-7).gather(1, y[:, None]).log()  # keras' formula
    ours = torch.nn.functional.cross_entropy(head(h), y, reduction="none")
    live = r.sum(1) > 0
    torch.testing.assert_close(ours[live], keras[live, 0], atol=1e-5, rtol=0)
    assert torch.equal(head.predict(h), r.argmax(1)) and torch.equal(head(h).argmax(1)[live], r.argmax(1)[live])
    dead = ReLUClassifier(6, 4, normalize=True)
    with torch.no_grad():
        dead.fc.bias.fill_(-100.0)
    out = dead(h)
    assert torch.isfinite(out).all() and torch.allclose(out, torch.full_like(out, math.log(1e-7)))


def test_summary_table_and_results_file_from_verdict_records(tmp_path) -> None:
    from rectlab.reproduce.summary import load_records, results_markdown, summary_markdown

    record = {
        "name": "prelu",
        "verdict": "weaker than claimed",
        "seconds": 312.4,
        "converged": True,
        "cpu": "Example CPU 9000",
        "versions": {"rectlab": "0.1.0", "torch": "2.14.1"},
        "runs": {"done": 40, "diverged": 1, "stalled": 2, "failed": 0},
        "checks": [
            {
                "claim": "PReLU is lower",
                "primary": True,
                "verdict": "weaker than claimed",
                "estimate": -0.2,
                "ci": [-0.39, -0.01],
                "mde": 0.25,
                "margin": 0.5,
                "n": 8,
                "n_planned": 8,
                "null": 0.0,
                "kind": "lower",
                "stability": 0.71,
                "fragile": True,
            },
            {
                "claim": "side",
                "primary": False,
                "verdict": "reproduced",
                "estimate": None,
                "ci": [None, None],
                "mde": None,
                "margin": None,
                "n": 3,
                "stability": None,
            },
        ],
    }
    (tmp_path / "prelu").mkdir()
    (tmp_path / "prelu" / "verdict.json").write_text(json.dumps(record))
    records = load_records([tmp_path / "prelu", tmp_path / "missing"])
    table = summary_markdown(records)
    row = (
        "| prelu | weaker than claimed | weaker than claimed (0.71, fragile): PReLU is lower — -0.20 "
        "[-0.39, -0.01], MDE 0.25, margin 0.5, n=8/8"
    )
    assert row in table and "| 40 / 1 / 2 / 0 |" in table and "312 s" in table and "side" not in table
    text = results_markdown(records, scale="quick", command="rectlab reproduce all --scale quick")
    assert text.startswith("# Reproduction results (quick scale)") and "Example CPU 9000" in text
    assert "Per-seed numbers differ across CPU types" in text and row in text and "1 weaker than claimed of 1" in text
    assert [what for pattern, what in FORBIDDEN if pattern.search(text)] == []


def test_a_failed_budget_check_blocks_final_accuracy_claims() -> None:
    from types import SimpleNamespace

    from rectlab.reproduce.evidence import final, sample

    run = {"seed": 0, "config": {}, "epochs": [{"train_loss": v, "test_error": 10.0} for v in (2.0, 0.5, 0.45, 0.44)]}
    failed = {"passed": False, "shift": -0.9, "metric": "test_error", "tolerance": 0.15}
    cells = [
        SimpleNamespace(label=name, runs=[dict(run, seed=s) for s in range(4)], diverged=[], budget=b)
        for name, b in (("relu", None), ("helu", failed))
    ]
    check = direction_check(
        "lower", sample(cells[0], final("test_error")), sample(cells[1], final("test_error")), gate=True
    )
    assert check.verdict == "inconclusive" and "not converged within the budget" in check.reason
