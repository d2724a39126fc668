"""Study specs: parsing, grid expansion, and errors that point at the line."""

from __future__ import annotations

import pytest

from rectlab.study import SpecError, baseline_of, cells, parse_spec, runs
from rectlab.training.config import ConfigError, TrainConfig, config_hash, from_dict

SPEC = """
[study]
name = "demo"
seeds = 2
baseline = { activation = "relu" }

[base]
model = "small-cnn"
dataset = "digits"
epochs = 2

[grid]
activation = ["relu", "prelu", "gelu"]
erase_relu = [0.0, 1.0]

[scales.quick]
epochs = 1
seeds = [7]
"""


def test_parse_and_expand() -> None:
    spec = parse_spec(SPEC)
    assert spec.name == "demo" and spec.seeds == (0, 1)
    assert spec.base.epochs == 2 and spec.base.dataset == "digits"
    cs = cells(spec)
    assert len(cs) == 6
    assert cs[0].as_dict() == {"activation": "relu", "erase_relu": 0.0}
    rs = runs(spec)
    assert len(rs) == 12
    assert len({r.hash for r in rs}) == 12  # every run has its own identity
    assert {r.config.seed for r in rs} == {0, 1}
    prelu_erased = [c for c in cs if c.as_dict() == {"activation": "prelu", "erase_relu": 1.0}][0]
    assert baseline_of(spec, prelu_erased).as_dict() == {"activation": "relu", "erase_relu": 1.0}


def test_scale_overrides_base_and_seeds() -> None:
    spec = parse_spec(SPEC, scale="quick")
    assert spec.base.epochs == 1 and spec.seeds == (7,)
    with pytest.raises(SpecError, match="valid scales: quick"):
        parse_spec(SPEC, scale="huge")


@pytest.mark.parametrize(
    ("bad", "good", "match"),
    [
        ("epochs = 2", "epocs = 2", r"line 10\).*unknown key 'epocs'.*Did you mean 'epochs'"),
        (
            'activation = ["relu", "prelu", "gelu"]',
            'activation = ["relu", "prelux"]',
            r"line 13\).*unknown activation 'prelux'.*Known activations: .*smelu",
        ),
        ('model = "small-cnn"', 'model = "resnet9000"', r"line 8\).*unknown model 'resnet9000'"),
        ("[grid]", "[grids]", r"unknown section \[grids\]"),
        ("seeds = 2", "seeds = 0", "seeds must be >= 1"),
        ('baseline = { activation = "relu" }', 'baseline = { activation = "elu" }', "not among the grid values"),
        ("epochs = 2", "epochs = -1", "epochs must be a positive integer"),
        ("epochs = 2", "optimizer = 'adam'", "optimizer='adam' is not valid; choose one of: sgd, adamw"),
        ("erase_relu = [0.0, 1.0]", "seed = [1, 2]", "seeds are set with"),
    ],
)
def test_errors_point_at_the_problem(bad: str, good: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_spec(SPEC.replace(bad, good, 1), where="demo.toml")


def test_invalid_toml() -> None:
    with pytest.raises(SpecError, match="not valid TOML"):
        parse_spec("[study\nname=1")


def test_config_rejects_unknown_keys_and_hash_ignores_device() -> None:
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'"):
        from_dict({"learning_rate": 0.1})
    a = TrainConfig(device="cpu")
    b = TrainConfig(device="cuda")
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(a.replace(seed=1))


@pytest.mark.parametrize(
    ("bad", "good", "match"),
    [
        ("epochs = 2", 'lr = "0.1"', r"line 10\): lr must be a number, got '0.1' \(str\) \(write it without quotes\)"),
        ("epochs = 2", "lr = nan", "lr must be a finite number, got nan"),
        ("epochs = 2", "weight_decay = inf", "weight_decay must be a finite number"),
        ("epochs = 2", "train_limit = 0", "0 does not mean 'all'"),
        ("seeds = 2", "seeds = [0, 0]", "lists a seed twice"),
        ("seeds = 2", "seeds = 1000000000", "seeds must be at most 10000"),
        ("erase_relu = [0.0, 1.0]", "lr = [0.1, inf]", r"\[grid\] lr: lr must be a finite number"),
        ("seeds = 2", "seeds = 2\nprobes = ['dead-neuron']", "probes must be a list of: dead-neurons"),
    ],
)
def test_bad_values_are_refused_before_anything_runs(bad: str, good: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_spec(SPEC.replace(bad, good, 1), where="demo.toml")


def test_an_empty_spec_is_refused_not_run_with_defaults() -> None:
    with pytest.raises(SpecError, match="nothing to train"):
        parse_spec("", where="empty.toml")
    with pytest.raises(SpecError, match="nothing to train"):
        parse_spec("[study]\nname = 'x'\n", where="empty.toml")


def test_grid_size_is_bounded() -> None:
    text = "[study]\nseeds = 10000\n[grid]\nlr = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]\n"
    with pytest.raises(SpecError, match="110000 runs, more than the limit of 100000"):
        parse_spec(text)


def test_spec_activations_take_parameters_and_typos_get_a_suggestion() -> None:
    spec = parse_spec('[base]\nmodel = "mlp"\ndataset = "digits"\n[grid]\nactivation = ["relu", "smelu:beta=0.5"]\n')
    assert spec.grid["activation"] == ("relu", "smelu:beta=0.5")
    with pytest.raises(SpecError, match=r"line 5.*unknown activation 'smelux'. Did you mean 'smelu'\?"):
        parse_spec('[base]\nmodel = "mlp"\ndataset = "digits"\n[grid]\nactivation = ["relu", "smelux:beta=0.5"]\n')
    with pytest.raises(SpecError, match=r"unknown model 'resnet21'. Did you mean"):
        parse_spec('[base]\nmodel = "resnet21"\n')
