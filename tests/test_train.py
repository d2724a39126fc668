"""Training on real (tiny) data: determinism on CPU, resume after an interruption, schedules, errors."""

from __future__ import annotations

import math

import pytest
import torch

from rectlab.training.config import TrainConfig
from rectlab.training.loop import _lr_at, train_one

TINY = dict(model="small-cnn", dataset="digits", epochs=3, batch_size=64, lr=0.05, device="cpu")


@pytest.fixture(scope="module")
def digits():
    from rectlab.data import load

    return load("digits")


def test_same_seed_same_metrics_and_learning_happens(digits) -> None:
    cfg = TrainConfig(**TINY, activation="prelu")
    a = train_one(cfg, data=digits)
    b = train_one(cfg, data=digits)
    strip = [{k: v for k, v in m.items() if k != "seconds"} for m in a.metrics]
    assert strip == [{k: v for k, v in m.items() if k != "seconds"} for m in b.metrics]
    assert len(a.metrics) == 3
    assert a.metrics[-1]["test_error"] < 50.0  # 10 classes: chance is 90% error
    assert a.metrics[-1]["train_loss"] < a.metrics[0]["train_loss"]
    assert a.extras["slopes"] and all(row["kind"] == "prelu" for row in a.extras["slopes"])
    c = train_one(cfg.replace(seed=1), data=digits)
    assert [m["test_loss"] for m in c.metrics] != [m["test_loss"] for m in a.metrics]


def test_resume_after_interruption_gives_identical_metrics(digits, tmp_path) -> None:
    cfg = TrainConfig(**TINY, activation="rrelu")  # stochastic activation: RNG state must be restored too
    full = train_one(cfg, tmp_path / "full", data=digits)

    steps = {"n": 0}

    def stop_mid_epoch_two(event: str, **info) -> None:
        if event == "step":
            steps["n"] += 1
            if steps["n"] == 30:  # 22 steps per epoch: this is inside epoch 2
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_one(cfg, tmp_path / "cut", data=digits, reporter=stop_mid_epoch_two)
    state = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 1
    resumed = train_one(cfg, tmp_path / "cut", data=digits)
    assert resumed.resumed_from_epoch == 1

    def strip(ms):
        return [{k: v for k, v in m.items() if k != "seconds"} for m in ms]

    assert strip(resumed.metrics) == strip(full.metrics)


def test_checkpoint_of_another_config_is_refused(digits, tmp_path) -> None:
    cfg = TrainConfig(**{**TINY, "epochs": 1})
    train_one(cfg, tmp_path, data=digits)
    with pytest.raises(RuntimeError, match="different configuration"):
        train_one(cfg.replace(lr=0.01), tmp_path, data=digits)


def test_transforms_and_options_run(digits) -> None:
    cfg = TrainConfig(
        **{**TINY, "epochs": 1},
        init="he",
        erase_relu=0.5,
        optimizer="adamw",
        label_smoothing=0.1,
        schedule="step",
        warmup_epochs=0.5,
        nesterov=False,
    )
    r = train_one(cfg.replace(lr=1e-3), data=digits)
    assert len(r.extras["erased_sites"]) == 2  # half of small-cnn's 4 basic modules
    gains = {row["layer"]: row for row in r.extras["init_gains"]}
    assert gains["head"]["gain"] == 1.0 and gains["head"]["activation"] is None
    relu_gains = [row["gain"] for row in gains.values() if row["activation"] == "relu"]
    assert len(relu_gains) == 2 and all(g == pytest.approx(2**0.5) for g in relu_gains)
    assert [row["gain"] for row in gains.values() if row["activation"] == "identity"] == [1.0, 1.0]
    assert math.isfinite(r.metrics[0]["test_loss"])


def test_lr_schedules() -> None:
    cfg = TrainConfig(lr=1.0, epochs=4, warmup_epochs=1, schedule="cosine")
    lrs = [_lr_at(cfg, s, 40, 10) for s in range(40)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[-1] < 0.01
    step = TrainConfig(lr=1.0, epochs=4, schedule="step", step_milestones=(0.5, 0.75))
    assert [_lr_at(step, s, 40, 10) for s in (0, 19, 20, 30, 39)] == pytest.approx([1, 1, 0.1, 0.01, 0.01])


def test_cuda_request_without_gpu_is_a_clear_error(digits) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU is available; use --device cpu"):
        train_one(TrainConfig(**{**TINY, "device": "cuda"}), data=digits)


def test_decay_activation_params_goes_through_param_groups() -> None:
    from rectlab import models
    from rectlab.training.loop import _make_optimizer

    net = models.create("mlp", activation="prelu", num_classes=10, in_channels=1)
    default = {g["name"]: g["weight_decay"] for g in _make_optimizer(TrainConfig(weight_decay=1e-3), net).param_groups}
    assert default == {"decay": 1e-3, "no_decay_activation": 0.0}
    ablation = _make_optimizer(TrainConfig(weight_decay=1e-3, decay_activation_params=True), net)
    assert {g["name"]: g["weight_decay"] for g in ablation.param_groups} == {"decay": 1e-3, "decay_activation": 1e-3}


def test_learned_slopes_lives_in_probes_and_stays_importable_from_train() -> None:
    import rectlab.probes
    import rectlab.training.loop

    assert rectlab.training.loop.learned_slopes is rectlab.probes.learned_slopes
    assert rectlab.probes.learned_slopes.__module__ == "rectlab.probes"


def test_divergence_stops_the_run_with_its_epoch_and_step(digits, tmp_path, monkeypatch) -> None:
    from rectlab.training import loop as train
    from rectlab.training.loop import Diverged

    monkeypatch.setattr(train, "DIVERGENCE_CHECK_EVERY", 5)
    cfg = TrainConfig(**{**TINY, "model": "mlp"})
    steps = {"n": 0}

    def poison_after_step_30(event: str, **info) -> None:
        if event == "step":
            steps["n"] += 1
            if steps["n"] == 30:  # epoch 2 has steps 23..44: the loss of step 31 is NaN
                with torch.no_grad():
                    for p in model_params:
                        p.fill_(float("nan"))

    original = train.build_model
    model_params: list = []

    def build(*args, **kwargs):
        model, report = original(*args, **kwargs)
        model_params.extend(model.parameters())
        return model, report

    monkeypatch.setattr(train, "build_model", build)
    with pytest.raises(Diverged) as err:
        train_one(cfg, tmp_path, data=digits, reporter=poison_after_step_30)
    e = err.value
    assert isinstance(e, FloatingPointError) and (e.epoch, e.step, e.loss) == (2, 31, "nan")
    assert "diverged in epoch 2 at step 31" in str(e) and e.as_dict() == {"epoch": 2, "step": 31, "loss": "nan"}
    # found at the check after epoch 2's 10th step (step 32, before its report), not at the end of the epoch
    assert steps["n"] == 31
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["epoch"] == 1  # the good epoch is kept


def test_curves_use_a_test_subset_and_the_last_epoch_the_whole_test_set(digits) -> None:
    cfg = TrainConfig(**TINY, activation="relu")
    full = train_one(cfg.replace(curve_test_limit=100_000), data=digits)  # every epoch on all test examples
    subset = train_one(cfg.replace(curve_test_limit=50), data=digits)
    assert len(digits.test_y) > 50
    for a, b in zip(full.metrics, subset.metrics):  # training is the same; only the curve's evaluation differs
        assert (a["train_loss"], a["train_error"]) == (b["train_loss"], b["train_error"])
    for row in subset.metrics[:-1]:  # 50 examples: the error is a multiple of 2 points
        assert row["test_error"] / 2 == round(row["test_error"] / 2)
    assert subset.metrics[0]["test_loss"] != full.metrics[0]["test_loss"]
    final = {k: v for k, v in full.metrics[-1].items() if k != "seconds"}
    assert final == {k: v for k, v in subset.metrics[-1].items() if k != "seconds"}


def test_curve_test_limit_keeps_old_run_hashes_and_refuses_zero() -> None:
    from rectlab.training.config import ConfigError, config_hash

    cfg = TrainConfig(**TINY)
    assert "curve_test_limit" in cfg.to_dict()
    assert config_hash(cfg) == "fceadb4994b007b1"  # this config's hash before curve_test_limit (and pruning) existed
    assert config_hash(cfg) != config_hash(cfg.replace(curve_test_limit=500))
    with pytest.raises(ConfigError, match="curve_test_limit must be a positive integer"):
        cfg.replace(curve_test_limit=0)
