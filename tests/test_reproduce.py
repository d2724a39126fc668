"""Reproductions: every study end to end at smoke scale, the verdict rules, the XOR runner, pruning, the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from rectlab import reproduce
from rectlab.reproduce.core import ClaimCheck, overall_verdict, studies_dir
from rectlab.reproduce.evidence import direction_check, equivalence_check, no_improvement_check
from rectlab.reproduce.pruning import global_magnitude_prune, prune_callback
from rectlab.reproduce.studies import ALL
from rectlab.reproduce.xor import XOR_INPUTS, XOR_MODELS, XOR_Y, XorSetup, adam_step, load_setup, run_xor, wilson
from rectlab.study import load_spec, parse_spec


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny models: one thread is several times faster than two on a shared CPU.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- every study at smoke scale ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [r.name for r in ALL])
def test_study_runs_at_smoke_scale_and_reports_a_verdict(name, tmp_path) -> None:
    report = reproduce.run(name, "smoke", tmp_path, progress=False, command=f"rectlab reproduce {name}")
    assert report.verdict in reproduce.VERDICTS and report.reason
    assert report.checks and all(c.verdict in reproduce.VERDICTS for c in report.checks)
    md = report.markdown.read_text()
    repro = reproduce.get(name)
    assert f"Reproduction `{name}`: {report.verdict}" in md
    assert repro.published[0][1] in md and "Claims checked" in md and "95% CI" in md
    pngs = list((tmp_path / "plots").glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    html = report.html.read_text()
    assert html.count("data:image/png;base64,") >= len(pngs)
    record = json.loads(report.json.read_text())
    assert record["verdict"] == report.verdict and record["command"] == f"rectlab reproduce {name}"
    for part in repro.parts:
        assert (tmp_path / part.name / "report.html").is_file()
        assert record["parts"][part.name]["runs_done"] > 0 and record["parts"][part.name]["runs_not_done"] == 0


def test_rerun_skips_finished_runs(tmp_path) -> None:
    first = reproduce.run("helu", "smoke", tmp_path, progress=False)
    db = (tmp_path / "activations" / "results.db").stat().st_mtime_ns
    runs_before = sorted(p.name for p in (tmp_path / "activations" / "runs").iterdir())
    second = reproduce.run("helu", "smoke", tmp_path, progress=False)
    assert second.verdict == first.verdict and [c.reason for c in second.checks] == [c.reason for c in first.checks]
    assert sorted(p.name for p in (tmp_path / "activations" / "runs").iterdir()) == runs_before
    assert db <= (tmp_path / "activations" / "results.db").stat().st_mtime_ns


def test_every_spec_parses_at_every_scale() -> None:
    folder = studies_dir()
    for repro in ALL:
        for scale in reproduce.SCALES:
            if repro.runner is not None:
                assert load_setup(folder / "xor-prelu.toml", scale).trials >= 1
            for part in repro.parts:
                spec = load_spec(folder / part.spec, scale=scale)
                assert spec.seeds and spec.grid, (part.spec, scale)
                if scale == "smoke":
                    assert spec.base.dataset == "digits" and spec.base.epochs <= 2
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

BASE = {0: 10.0, 1: 11.0, 2: 12.0, 3: 10.5, 4: 11.5}


def test_direction_check_rules() -> None:
    better = {s: v - 1.0 + 0.01 * s for s, v in BASE.items()}
    worse = {s: v + 1.0 + 0.01 * s for s, v in BASE.items()}
    noisy = {0: 9.0, 1: 12.5, 2: 11.0, 3: 11.4, 4: 10.0}
    assert direction_check("c", BASE, better).verdict == "reproduced"
    assert direction_check("c", BASE, better, expect="higher").verdict == "not reproduced"
    assert direction_check("c", BASE, worse).verdict == "not reproduced"
    check = direction_check("c", BASE, noisy, what="x − y", unit=" points")
    assert check.verdict == "inconclusive" and "includes 0" in check.reason and "with 5 seeds" in check.reason
    tiny = {s: v + 0.001 * (-1) ** s for s, v in BASE.items()}
    assert direction_check("c", BASE, tiny, margin=0.5).verdict == "not reproduced"
    assert direction_check("c", {0: 1.0}, {0: 0.5}).verdict == "inconclusive"
    with pytest.raises(ValueError, match="expect"):
        direction_check("c", BASE, better, expect="smaller")


def test_equivalence_and_no_improvement_rules() -> None:
    close = {s: v + 0.05 * (-1) ** s for s, v in BASE.items()}
    far = {s: v + 3.0 + 0.01 * s for s, v in BASE.items()}
    assert equivalence_check("c", BASE, close, margin=1.0).verdict == "reproduced"
    assert equivalence_check("c", BASE, far, margin=1.0).verdict == "not reproduced"
    assert equivalence_check("c", BASE, {0: 5.0, 1: 15.0, 2: 9.0, 3: 14.0, 4: 8.0}, margin=1.0).verdict == \
        "inconclusive"
    assert no_improvement_check("c", BASE, close, margin=0.5).verdict == "reproduced"
    assert no_improvement_check("c", BASE, {s: v - 2 + 0.01 * s for s, v in BASE.items()},
                                margin=0.5).verdict == "not reproduced"


def test_overall_verdict() -> None:
    ok, no, maybe = (ClaimCheck("a", "reproduced", "r"), ClaimCheck("b", "not reproduced", "r"),
                     ClaimCheck("c", "inconclusive", "r"))
    side = ClaimCheck("d", "not reproduced", "r", primary=False)
    assert overall_verdict([ok, side])[0] == "reproduced"
    assert overall_verdict([ok, maybe])[0] == "inconclusive"
    assert "1 of 2 primary claims reproduced" in overall_verdict([ok, maybe])[1]
    assert overall_verdict([ok, no, maybe])[0] == "not reproduced"
    assert overall_verdict([side])[0] == "inconclusive"
    with pytest.raises(ValueError, match="verdict must be one of"):
        ClaimCheck("x", "maybe", "r")


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
        ref = {k: v[row:row + 1].clone().requires_grad_(True) for k, v in init.items()}
        opt = torch.optim.Adam(ref.values(), lr=lr)
        for _ in range(25):
            opt.zero_grad()
            ((XOR_MODELS["prelu"].forward(ref, x) - XOR_Y) ** 2).mean().backward()
            opt.step()
        for k in init:
            torch.testing.assert_close(ours[k][row:row + 1].detach(), ref[k].detach(), rtol=1e-10, atol=1e-12)


def test_prelu_unit_represents_xor_exactly() -> None:
    # The paper's Figure 1: w = (1, -1), a = -1 for inputs in {0, 1}; halve the weights for {-1, 1}.
    for inputs, w in (("binary", 1.0), ("bipolar", 0.5)):
        params = {"w": torch.tensor([[w, -w]], dtype=torch.float64), "a": torch.tensor([-1.0], dtype=torch.float64)}
        assert torch.equal(XOR_MODELS["prelu"].forward(params, XOR_INPUTS[inputs])[0], XOR_Y)


def test_run_xor_is_deterministic_and_counts_successes() -> None:
    setup = XorSetup(trials=8, epochs=60, lrs=(0.01, 0.3), models=("prelu", "mlp"))
    a, b = run_xor(setup), run_xor(setup)
    assert a.success == b.success and set(a.success) == {"prelu", "mlp"}
    assert all(0 <= s <= 8 for s in a.success["prelu"]) and a.n_params == {"prelu": 3, "mlp": 9}
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

def test_global_magnitude_pruning_and_masks_survive_training() -> None:
    from types import SimpleNamespace

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    achieved = global_magnitude_prune(model, 0.8)
    assert achieved == pytest.approx(0.8, abs=0.01)
    zero = model[0].weight == 0
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 1, 8, 8)).sum().backward()
        opt.step()
    assert torch.equal(model[0].weight == 0, zero)  # the mask holds while the optimizer updates weight_orig
    dense = nn.Sequential(nn.Linear(10, 10))
    cb = prune_callback(0.5, at_epoch=2)
    for epoch in (1, 2):
        state = SimpleNamespace(epoch=epoch, model=dense, metrics={}, extras={})
        cb(state)
        assert state.metrics["sparsity"] == (0.0 if epoch == 1 else pytest.approx(0.5))
    with pytest.raises(ValueError, match="sparsity must be"):
        global_magnitude_prune(dense, 1.0)


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
