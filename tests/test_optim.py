"""rectlab.optim.param_groups: activation parameters are never weight-decayed (He et al. 2015)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rectlab import activations, models
from rectlab.optim import is_activation_module, param_groups


def counts(groups) -> dict[str, int]:
    return {g["name"]: len(g["params"]) for g in groups}


def test_prelu_slopes_get_their_own_group_without_decay():
    model = models.create("resnet20", activation="prelu")
    groups = param_groups(model, 5e-4)
    # resnet20: 19 convs + 19 BNs x (weight, bias) + head (weight, bias) = 59; one PReLU per site = 19.
    assert counts(groups) == {"decay": 59, "no_decay_activation": 19}
    by_name = {g["name"]: g for g in groups}
    assert by_name["decay"]["weight_decay"] == 5e-4 and by_name["no_decay_activation"]["weight_decay"] == 0.0
    assert all(n.endswith(("act1.weight", "act2.weight")) for n in by_name["no_decay_activation"]["param_names"])
    total = sum(p.numel() for g in groups for p in g["params"])
    assert total == sum(p.numel() for p in model.parameters())


def test_norm_and_bias_exclusion():
    model = models.create("resnet20", activation="prelu")
    assert counts(param_groups(model, 5e-4, no_decay_norm_and_bias=True)) == {
        "decay": 20,  # 19 conv weights + head weight
        "no_decay_activation": 19,
        "no_decay_norm": 38,
        "no_decay_bias": 1,  # the head bias (convs before BN have none)
    }


def test_torch_prelu_and_learnable_swish_are_activation_parameters():
    model = nn.Sequential(
        nn.Linear(4, 8),
        nn.PReLU(8),
        nn.Linear(8, 8),
        activations.SwishLearnable(),
        activations.Swish(beta=1.5),  # fixed beta: a buffer, not a parameter
        nn.LayerNorm(8),
        nn.Linear(8, 2),
    )
    groups = {g["name"]: g for g in param_groups(model, 1e-4, no_decay_norm_and_bias=True)}
    assert groups["no_decay_activation"]["param_names"] == ["1.weight", "3.beta"]
    assert groups["no_decay_norm"]["param_names"] == ["5.weight", "5.bias"]
    assert groups["no_decay_bias"]["param_names"] == ["0.bias", "2.bias", "6.bias"]
    assert groups["decay"]["param_names"] == ["0.weight", "2.weight", "6.weight"]


def test_shared_and_frozen_parameters():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, activations.PReLU(4))
    model[3].weight.requires_grad_(False)
    groups = param_groups(model, 1e-4)
    assert counts(groups) == {"decay": 2}  # shared weight and bias once; the frozen slope left out


def test_decaying_activation_parameters_is_an_explicit_ablation():
    model = models.create("small-cnn", activation="prelu")
    groups = {g["name"]: g for g in param_groups(model, 1e-3, decay_activation_params=True)}
    assert "no_decay_activation" not in groups
    assert len(groups["decay_activation"]["params"]) == 4 and groups["decay_activation"]["weight_decay"] == 1e-3


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.AdamW])
def test_a_step_with_zero_gradients_only_decays_the_decay_group(optimizer):
    model = models.create("small-cnn", activation="prelu")
    slopes = [p.clone() for n, p in model.named_parameters() if ".act." in n]
    conv = model.block2.conv.weight.clone()
    opt = optimizer(param_groups(model, 0.1), lr=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert all(
        torch.equal(a, p) for a, (n, p) in zip(slopes, ((n, p) for n, p in model.named_parameters() if ".act." in n))
    )
    assert torch.allclose(model.block2.conv.weight, conv * (1 - 0.1 * 0.1))


def test_negative_weight_decay_is_rejected():
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups(nn.Linear(2, 2), -1e-4)


def test_activation_modules_are_those_surgery_names() -> None:
    assert all(is_activation_module(m) for m in (nn.ReLU(), nn.PReLU(), nn.GELU(), activations.create("swish")))
    assert not any(is_activation_module(m) for m in (nn.Identity(), nn.Tanh(), nn.Linear(2, 2), nn.BatchNorm1d(2)))
