"""Activation search: expressions, search: names, space, screening, the study-driven search on a toy task, the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rectlab import activations, optim, search
from rectlab.cli.common import csv_list
from rectlab.cli.main import main
from rectlab.search import BINARY, UNARY, ExprError, SearchSpace, config_from_dict, parse, render
from rectlab.search.screen import reject_reason, screen, swish_fit
from rectlab.study import SpecError, parse_spec

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is faster on a shared CPU


# -- expressions -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "x*sigmoid(beta*x)",
        "max(x,tanh(x))",
        "cos(x)-x",
        "atan(x)**2-x",
        "sinc(x)+x",
        "x*asinh(x)**2",
        "-(x+beta1)/(abs(x)+eps)",
        "beta*x+(1-beta)*softplus(x)",
        "exp(-(beta*(x-sin(x))**2))",
        "x*(-2.5)",
        "min(x,0)-x**3",
    ],
)
def test_render_is_a_fixed_point_of_parse(text) -> None:
    once = render(parse(text))
    assert render(parse(once)) == once
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    e1, e2 = parse(text), parse(once)
    n = search.expr.num_params(e1)
    betas = [torch.tensor(0.5 + i, dtype=torch.float64) for i in range(n)]
    torch.testing.assert_close(search.expr.evaluate(e1, x, betas), search.expr.evaluate(e2, x, betas))


def test_parse_renumbers_parameters_and_keeps_shared_ones() -> None:
    assert render(parse("BETA7*x + beta3")) == "beta1*x+beta2"
    mix = parse("beta*x+(1-beta)*tanh(x)")
    assert search.expr.num_params(mix) == 1 and render(mix) == "beta*x+(1-beta)*tanh(x)"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "non-empty"),
        ("x +", "not a valid expression"),
        ("foo(x)", "unknown function 'foo'"),
        ("y*x", "unknown symbol 'y'"),
        ("x**beta", "integer powers"),
        ("max(x)", "takes 2 argument"),
        ("beta+1", "does not depend on x"),
        ("__import__('os')", "unknown function"),
        ("x.real", "not allowed"),
    ],
)
def test_parse_rejects_anything_outside_the_language(text, message) -> None:
    with pytest.raises(ExprError, match=message):
        parse(text)


def test_every_op_of_the_paper_builds_an_evaluable_expression() -> None:
    assert len(UNARY) == 25 and len(BINARY) == 10  # the paper's lists, section 3
    x = torch.linspace(0.1, 2.0, 5, dtype=torch.float64)
    for u in UNARY.values():
        e = u.build(search.ops.X)
        n = search.expr.num_params(e)
        out = search.expr.evaluate(e, x, [torch.tensor(1.0, dtype=torch.float64)] * n)
        assert out.shape == x.shape and torch.isfinite(out).all(), u.name
    torch.testing.assert_close(search.expr.evaluate(UNARY["sinc"].build(search.ops.X), x), torch.sin(x) / x)
    torch.testing.assert_close(search.expr.evaluate(UNARY["softplus"].build(search.ops.X), x), torch.log1p(x.exp()))
    for b in BINARY.values():
        e = b.build(search.ops.X, UNARY["tanh"].build(search.ops.X))
        assert search.expr.evaluate(e, x, [torch.tensor(1.0, dtype=torch.float64)] * search.expr.num_params(e)).shape


# -- activations by name -----------------------------------------------------------------------------------


def test_a_search_name_is_an_activation_with_learnable_undecayed_beta() -> None:
    act = activations.create("search:x*sigmoid(beta*x)")
    assert isinstance(act, search.SearchActivation) and act.expression == "x*sigmoid(beta*x)"
    assert activations.get("search: x * sigmoid(beta*x) ") is type(act)  # one class per canonical expression
    x = torch.randn(4, 7, dtype=torch.float64)
    with torch.no_grad():
        act.beta.fill_(1.7)
    torch.testing.assert_close(act.double()(x), x * torch.sigmoid(1.7 * x))
    xg = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: act(t), (xg,))
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 3), activations.create("search:max(x,tanh(x))"), torch.nn.Linear(3, 3), act
    )
    groups = {g["name"]: g["param_names"] for g in optim.param_groups(net, 1e-4)}
    assert groups["no_decay_activation"] == ["3.beta"]


def test_bad_search_names_fail_with_one_clear_line() -> None:
    with pytest.raises(ExprError, match="unknown function 'sigmod'"):
        activations.get("search:x*sigmod(x)")
    with pytest.raises(LookupError, match="unknown activation prefix 'timm:'"):
        activations.get("timm:x")
    with pytest.raises(ValueError, match="no Triton kernel"):
        activations.create("search:x*sigmoid(x)", backend="triton")


def test_study_specs_accept_search_names_and_reject_bad_ones() -> None:
    spec = parse_spec('[grid]\nactivation = ["relu", "search:max(x,sin(x))"]\n[base]\ndataset = "digits"\n')
    assert spec.grid["activation"] == ("relu", "search:max(x,sin(x))")
    with pytest.raises(SpecError, match="line 2.*unknown function 'sinn'"):
        parse_spec('[grid]\nactivation = ["relu", "search:max(x,sinn(x))"]\n')


def test_comma_lists_keep_expressions_whole() -> None:
    assert csv_list("relu, search:max(x,tanh(x)),gelu") == ["relu", "search:max(x,tanh(x))", "gelu"]


# -- space and screening -----------------------------------------------------------------------------------


def test_space_size_counts_what_enumerate_yields() -> None:
    space = SearchSpace(unary=("x", "scale", "sigmoid", "tanh"), binary=("add", "sigmul"), units=(1, 2))
    cands = list(space.enumerate())
    assert len(cands) == space.size() == 26 + 26 * 26
    swish = space.build(("scale", "x", "sigmul"))
    assert swish.text == "sigmoid(beta*x)*x"
    two = space.build(("x", "x", "add", "tanh", "sigmoid", "sigmul"))
    assert two.text == "sigmoid(tanh(x+x))*sigmoid(x)"
    with pytest.raises(ValueError, match="unknown unary function"):
        SearchSpace(unary=("x", "tan"))


def test_screening_rejects_what_cannot_train_and_merges_equal_candidates() -> None:
    space = SearchSpace()
    build = space.build
    assert "non-finite" in reject_reason(build(("sqrt", "x", "add")))
    assert "constant" in reject_reason(build(("x", "x", "sub")))
    assert "constant" in reject_reason(build(("const", "const", "add")))
    assert "explodes" in reject_reason(build(("x", "relu", "mul")))  # x*max(x, 0): the second moment compounds
    assert reject_reason(build(("scale", "x", "sigmul"))) == ""
    out = screen(
        [
            build(("x", "scale", "mul")),
            build(("scale", "x", "sigmul")),
            build(("x", "sigmoid", "mul")),
            build(("x", "x", "sub")),
            build(("x", "scale", "sigmul")),
        ]
    )
    texts = [c.text for c in out.accepted]
    # x*(beta*x) and sigmoid(beta*x)*x differ; x*sigmoid(x) differs from Swish with a learnable beta
    assert texts == ["x*(beta*x)", "sigmoid(beta*x)*x", "x*sigmoid(x)", "sigmoid(x)*(beta*x)"]
    merged = screen([build(("scale", "x", "sigmul")), build(("scale", "x", "mul")), build(("x", "scale", "mul"))])
    assert [c.text for c in merged.accepted] == ["sigmoid(beta*x)*x", "beta*x*x"]
    assert merged.aliases == {"beta*x*x": ["x*(beta*x)"]}
    assert list(out.rejected) == ["x-x"]


def test_swish_fit_recognises_swish_in_any_form() -> None:
    space = SearchSpace()
    for ops in (("scale", "x", "sigmul"), ("x", "sigmoid", "mul"), ("sigmoid", "scale", "mul")):
        assert swish_fit(space.build(ops))[0] < 1e-6, ops
    for ops in (("x", "tanh", "max"), ("relu", "x", "add"), ("x", "tanh", "mul")):
        assert swish_fit(space.build(ops))[0] > 1e-2, ops


# -- the search on a toy task ------------------------------------------------------------------------------

TOY = {
    "search": {"strategy": "exhaustive", "top_k": 2, "validation": "digits-val", "baselines": ["relu"]},
    "space": {"unary": ["x", "sigmoid", "square"], "binary": ["mul"], "units": 1},
    "child": {
        "model": "mlp",
        "model_kwargs": {"hidden": [32]},
        "batch_size": 64,
        "lr": 0.1,
        "augment": False,
        "device": "cpu",
    },
    "rungs": [{"epochs": 4, "seeds": 2}],
    "final": {"dataset": "digits", "epochs": 2, "seeds": 2},
}


def test_search_ranks_a_known_good_candidate_above_a_known_bad_one(tmp_path) -> None:
    config = config_from_dict(TOY)
    result = search.run_search(config, tmp_path, final=False, progress=False)
    ranks = {t: result.rank_of(t) for t in result.ranking}
    # x*sigmoid(x) (SiLU) trains well; x*x (x^2) passes screening but its gradients compound and training diverges,
    # which scores as the worst possible error and is recorded
    assert ranks["x*sigmoid(x)"] < ranks["x*x"] and result.rungs[0].scores["x*x"] == search.run.WORST
    assert result.rungs[0].scores["x*sigmoid(x)"] < 25 and set(result.rungs[0].bad_runs["x*x"]) == {0, 1}
    assert result.is_swish("x*sigmoid(x)") and not result.is_swish("x*x")
    record = json.loads((tmp_path / "search.json").read_text())
    assert [w["expression"] for w in record["winners"]] == result.winners
    assert record["screening"]["accepted"] == len(result.ranking)
    # a winner is an activation by name, from the folder or from its expression
    top = search.winner(tmp_path, 1)
    assert activations.get(f"search:{tmp_path}/1") is activations.get(f"search:{top}")
    with pytest.raises(ExprError, match="has 2 winner"):
        activations.get(f"search:{tmp_path}/3")
    # re-running resumes: nothing is trained again
    runs_before = sorted(p.name for p in (tmp_path / "rung1" / "runs").iterdir())
    again = search.run_search(config, tmp_path, final=False, progress=False)
    assert again.ranking == result.ranking
    assert sorted(p.name for p in (tmp_path / "rung1" / "runs").iterdir()) == runs_before


def test_halving_keeps_the_best_third_and_the_top_k() -> None:
    rung = search.RungResult(1, {}, 1, ["a", "b", "c", "d", "e", "f", "g"])
    rung.scores = {"a": 5.0, "b": 1.0, "c": 3.0, "d": 2.0, "e": 9.0, "f": 4.0, "g": math.inf}
    assert rung.ranked()[:3] == ["b", "d", "c"]


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="strategy 'rl'.*RL controller is not implemented"):
        config_from_dict({**TOY, "search": {**TOY["search"], "strategy": "rl"}})
    with pytest.raises(ValueError, match="unknown \\[search\\] key"):
        config_from_dict({**TOY, "search": {"topk": 3}})
    with pytest.raises(ValueError, match="unknown unary function"):
        config_from_dict({**TOY, "space": {"unary": ["x", "relu6"]}})
    with pytest.raises(ValueError, match="needs candidates"):
        config_from_dict({**TOY, "search": {**TOY["search"], "strategy": "random"}})
    with pytest.raises(ValueError, match="more than max_exhaustive"):
        search.pool(config_from_dict({**TOY, "space": {"units": 2}}))


def test_every_preset_of_the_shipped_settings_loads() -> None:
    for preset in ("smoke", "quick", "full"):
        config = search.load_config(search.default_config(), preset)
        assert config.rungs and config.top_k >= 1 and config.final_seeds >= 2
    quick = search.load_config(search.default_config(), "quick")
    assert quick.final_seeds >= 8 and any(swish_fit(c)[0] < 1e-6 for c in quick.space.enumerate())


def test_cli_search_prints_the_winners_by_name(tmp_path, capsys) -> None:
    code = main(["search", "--preset", "smoke", "--out", str(tmp_path), "--no-final", "--no-progress", "--top-k", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "1. " in out and f"search:{tmp_path}/1" in out
    assert not (tmp_path / "final").exists()
    assert main(["search", "--preset", "smoke", "--strategy", "random", "--out", str(tmp_path / "r")]) == 2
    assert "needs candidates" in capsys.readouterr().err


def test_search_baselines_take_activation_parameters() -> None:
    import dataclasses

    from rectlab.training.config import ConfigError

    config = search.load_config(search.default_config(), scale="smoke")
    assert dataclasses.replace(config, baselines=("relu", "smelu:beta=0.5")).baselines[1] == "smelu:beta=0.5"
    with pytest.raises((ConfigError, LookupError), match="Did you mean 'smelu'"):
        dataclasses.replace(config, baselines=("relu", "smelux:beta=0.5"))
