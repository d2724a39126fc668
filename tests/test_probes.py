"""Probes measured exactly: hand-built activations with known dead units, statistics against direct computation,
prediction difference of known pairs, hooks that leave no trace, and the epoch callbacks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from rectlab import activations
from rectlab.probes import (
    ActivationStats,
    DeadNeurons,
    epoch_callbacks,
    per_site_curves,
    prediction_difference,
    prediction_difference_from_probs,
    probe_sites,
    slope_table,
)


def _known_preactivations() -> torch.Tensor:
    """(N=2, C=4, 2, 2): channel 0 always negative, 1 positive once, 2 exactly zero, 3 always positive."""
    x = torch.empty(2, 4, 2, 2)
    x[:, 0] = -1.0
    x[:, 1] = -2.0
    x[1, 1, 0, 1] = 0.5
    x[:, 2] = 0.0
    x[:, 3] = 3.0
    return x


def test_dead_neuron_rate_is_exact_on_known_units() -> None:
    model = nn.Sequential(activations.ReLU())
    x = _known_preactivations()
    probe = DeadNeurons(model)
    res = probe.run([x[:1], x[1:]])  # the only firing of channel 1 is in the second batch
    (row,) = res.values()
    assert row.site == "0" and row.units == 4 and row.dead == 2 and row.dead_rate == 0.5
    # fired elements: channel 3 (8) + one element of channel 1 -> 9 of 32
    assert row.dynamic_rate == pytest.approx(1 - 9 / 32, abs=0)
    assert row.examples == 2
    assert probe.summary() == {"dead_rate": 0.5, "dynamic_rate": 1 - 9 / 32}


def test_dead_neurons_per_element_and_for_non_rectifiers() -> None:
    x = _known_preactivations()
    # ELU's output is non-zero on the negative side: firing is judged on the pre-activation.
    res = DeadNeurons(nn.Sequential(nn.ELU()), unit="element").run([x])
    (row,) = res.values()
    assert row.units == 16 and row.dead == 16 - 5  # channel 3: 4 positions, channel 1: one position
    with pytest.raises(ValueError, match="unit must be"):
        DeadNeurons(nn.Sequential(nn.ReLU()), unit="neuron")


def test_dead_neurons_on_linear_layer_and_channel_last() -> None:
    lin = nn.Linear(2, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        lin.bias.zero_()
    model = nn.Sequential(lin, nn.ReLU())
    x = torch.tensor([[1.0, -1.0], [2.0, -3.0]])  # unit 1 never fires; unit 2: 0 (not > 0), then 1
    (row,) = DeadNeurons(model).run([x]).values()
    assert (row.units, row.dead) == (3, 1)
    # (N, L, C) layout with channel_dim=-1 gives the same per-channel answer
    seq = _known_preactivations().flatten(2).transpose(1, 2)  # (2, 4 positions, 4 channels)
    (row,) = DeadNeurons(nn.Sequential(nn.ReLU()), channel_dim=-1).run([seq]).values()
    assert (row.units, row.dead) == (4, 2)


def test_activation_stats_match_direct_computation() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 5, 3), activations.ELU(), nn.Conv2d(5, 4, 1), activations.ReLU())
    batches = [torch.randn(n, 3, 6, 6) for n in (3, 7, 1)]
    res = ActivationStats(model).run(batches)
    assert list(res) == ["1", "3"]
    with torch.no_grad():
        outs = {"1": [], "3": []}
        for x in batches:
            h = model[1](model[0](x))
            outs["1"].append(h)
            outs["3"].append(model[3](model[2](h)))
    for site, chunks in outs.items():
        y = torch.cat(chunks).double()
        assert res[site].mean == pytest.approx(float(y.mean()), rel=1e-12, abs=1e-14)
        assert res[site].var == pytest.approx(float(y.var(unbiased=False)), rel=1e-10)
        ch_means = y.transpose(0, 1).reshape(y.shape[1], -1).mean(1)
        assert res[site].mean_abs_channel_mean == pytest.approx(float(ch_means.abs().mean()), rel=1e-12)
        assert res[site].count == y.numel()
    relu_out = res["3"]
    assert relu_out.mean > 0  # ReLU outputs are non-negative: a positive bias shift


def test_hooks_are_attached_only_inside_the_context_and_reused_modules_count_per_call() -> None:
    class Reuse(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.fc(self.relu(x)))

    model = Reuse()
    x = torch.randn(8, 4)
    before = model(x)
    probe = DeadNeurons(model)
    assert not model._forward_pre_hooks and not model.relu._forward_hooks  # nothing until attached
    with probe:
        assert probe.attached and len(model.relu._forward_hooks) == 1
        during = model(x)
    assert not probe.attached and not model._forward_pre_hooks and not model.relu._forward_hooks
    assert torch.equal(before, during)
    assert list(probe.result()) == ["relu", "relu#2"]
    probe.reset()
    assert probe.result() == {}


def test_sites_skip_erased_identity_and_missing_sites_are_explained() -> None:
    model = nn.Sequential(nn.Linear(2, 2), activations.Identity(), activations.PReLU(2), nn.GELU())
    assert list(probe_sites(model)) == ["2", "3"]
    with pytest.raises(ValueError, match="swap_activations"):
        DeadNeurons(nn.Sequential(nn.Linear(2, 2)))


def test_probe_sites_follow_the_surgery_table_plus_gating_modules() -> None:
    relu = nn.ReLU()
    model = nn.Sequential(
        nn.Linear(2, 2),
        relu,
        nn.Identity(),
        nn.Tanh(),
        nn.Sigmoid(),
        nn.Hardswish(),
        activations.ReLUClassifier(2, 2),
        nn.Sequential(relu, nn.Softplus()),
    )
    assert list(probe_sites(model)) == ["1", "3", "4", "5", "7.1"]  # "7.0" is "1" again


def test_slope_table_reports_learned_values() -> None:
    model = nn.Sequential(
        activations.PReLUShared(), nn.Conv2d(1, 3, 1), activations.PReLU(3), activations.SwishLearnable()
    )
    with torch.no_grad():
        model[0].weight.fill_(0.681)
        model[2].weight.copy_(torch.tensor([0.1, 0.2, 0.6]))
    rows = slope_table(model, values=True)
    assert [r["layer"] for r in rows] == ["0", "2", "3"]
    assert rows[0]["mean"] == pytest.approx(0.681) and rows[0]["num_parameters"] == 1
    assert rows[1]["mean"] == pytest.approx(0.3) and rows[1]["values"] == pytest.approx([0.1, 0.2, 0.6])
    assert rows[2]["kind"] == "swish-beta" and rows[2]["values"] == [1.0]


def test_prediction_difference() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3))
    x, y = torch.randn(20, 5), torch.randint(0, 3, (20,))
    same = prediction_difference(model, model, [(x[:10], y[:10]), (x[10:], y[10:])])
    assert (same.top1, same.l1, same.label_l1, same.n) == (0.0, 0.0, 0.0, 20)
    p = torch.tensor([[0.7, 0.3], [0.4, 0.6]], dtype=torch.float64)
    q = torch.tensor([[0.45, 0.55], [0.4, 0.6]], dtype=torch.float64)
    pd = prediction_difference_from_probs(p, q, labels=torch.tensor([1, 1]))
    assert pd.top1 == 0.5 and pd.l1 == pytest.approx(0.125) and pd.label_l1 == pytest.approx(0.125)
    with pytest.raises(TypeError, match="not an iterator"):
        prediction_difference(model, model, iter([x]))
    with pytest.raises(ValueError, match="same shape"):
        prediction_difference_from_probs(p, q[:1])


def test_epoch_callbacks_add_metrics_and_tables() -> None:
    from rectlab.training.config import TrainConfig
    from rectlab.training.loop import EpochState

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), activations.PReLU(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 3), activations.ReLU()
    )
    data = SimpleNamespace(
        in_memory=True, train_x=torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8), mean=(0.5,), std=(0.25,)
    )
    config = TrainConfig(epochs=2, train_limit=30)
    callbacks = epoch_callbacks(["dead-neurons", "activation-stats", "slopes"], limit=100)
    rows = []
    extras: dict = {}
    for epoch in (1, 2):
        row: dict = {"epoch": epoch}
        for cb in callbacks:
            cb(EpochState(epoch, model, row, config, data, torch.device("cpu"), extras))
        rows.append(row)
    assert model.training and not model[1]._forward_hooks  # mode restored, hooks gone
    expected = DeadNeurons(model).run([(data.train_x[:30].double() / 255 - 0.5).float() / 0.25])
    assert rows[0]["dnr/1"] == expected["1"].dead_rate and rows[0]["dnr_dynamic/4"] == expected["4"].dynamic_rate
    assert {"dnr", "dnr_dynamic", "act_mean/1", "act_var/4", "act_abs_channel_mean/1", "slope/1"} <= set(rows[1])
    assert rows[1]["slope/1"] == pytest.approx(0.25)
    assert [t["site"] for t in extras["probes"]["dead_neurons"]] == ["1", "4"]
    assert per_site_curves(rows, "dnr") == {"1": [rows[0]["dnr/1"]] * 2, "4": [rows[0]["dnr/4"]] * 2}
    with pytest.raises(ValueError, match="known probes: dead-neurons"):
        epoch_callbacks(["dead"])
