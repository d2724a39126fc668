"""rectlab.models: every registered model builds, runs forward and backward on 1x8x8 / 1x28x28 / 3x32x32
inputs, gives every activation site its own module, and matches the published parameter counts."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rectlab import activations, models
from rectlab.registry import UnknownNameError
from rectlab.surgery import activation_sites

# Heavy at 28x28/32x32 on a CPU; they run at 8x8 only (same code paths).
HEAVY = {"wrn-28-10", "wrn", "wrn-16-8", "wrn-40-4", "vgg16", "vgg16-bn", "resnet110", "preact-resnet110"}

EXPECTED_NAMES = {
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "preact-resnet20",
    "preact-resnet56",
    "preact-resnet110",
    "wrn-16-4",
    "wrn-28-10",
    "vgg11",
    "vgg16",
    "vgg11-bn",
    "vgg16-bn",
    "plain",
    "plain-22",
    "plain-30",
    "mlp",
    "small-cnn",
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_has_the_spec_names():
    assert set(models.names()) >= EXPECTED_NAMES


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED_NAMES) if n != "wrn-28-10"])
def test_forward_backward_on_small_grayscale_and_own_module_per_site(name):
    torch.manual_seed(0)
    x = torch.randn(2, 1, 8, 8)
    model = models.create(name, activation="prelu", num_classes=7, in_channels=1)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)

    sites = activation_sites(model)
    assert sites, "every model has activation sites"
    assert all(s.kind == "module" for s in sites), "no functional activation calls in rectlab models"
    assert len({s.target for s in sites}) == len(sites), "an activation module is called at two sites"


@pytest.mark.parametrize(
    "name", ["resnet20", "preact-resnet20", "wrn-16-4", "vgg11-bn", "plain-22", "mlp", "small-cnn"]
)
def test_channelwise_prelu_gets_the_channels_of_its_site(name):
    model = models.create(name, activation="prelu", in_channels=1)
    for s in activation_sites(model, torch.randn(2, 1, 8, 8)):
        assert model.get_submodule(s.target).num_parameters == s.channels


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED_NAMES) if n not in HEAVY])
@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 3, 32, 32)])
def test_fashion_mnist_and_cifar_shapes(name, shape):
    model = models.create(name, in_channels=shape[1])
    assert model(torch.randn(shape)).shape == (2, 10)


@pytest.mark.parametrize(
    "name, expected_sites",
    [
        ("resnet20", 19),  # stem + 2 per block x 9
        ("preact-resnet20", 19),  # 2 per block x 9 + final BN-act
        ("wrn-16-4", 13),  # 2 per block x 6 + final
        ("vgg11", 8),
        ("vgg16-bn", 13),
        ("plain-22", 21),
        ("plain-30", 29),
        ("mlp", 2),
        ("small-cnn", 4),
    ],
)
def test_site_counts(name, expected_sites):
    assert len(activation_sites(models.create(name))) == expected_sites


def test_published_parameter_counts():
    # He et al. 2016a table 6: ResNet-20 0.27M, ResNet-110 1.7M; Zagoruyko & Komodakis table: WRN-28-10 36.5M.
    assert n_params(models.create("resnet20")) == 269_722
    assert round(n_params(models.create("resnet110")) / 1e6, 1) == 1.7
    assert round(n_params(models.create("wrn-28-10")) / 1e6, 1) == 36.5
    assert round(n_params(models.create("wrn-16-4")) / 1e6, 1) == 2.7


def test_shortcut_options_and_dropout():
    a = models.create("resnet20", shortcut="A")
    b = models.create("resnet20", shortcut="B")
    assert n_params(b) > n_params(a)  # option B adds the 1x1 projections
    w = models.create("wrn-16-4", dropout=0.3)
    assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in w.modules())
    assert w(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_activation_as_name_class_factory_and_kwargs():
    by_name = models.create("small-cnn", activation="leaky-relu", activation_kwargs={"negative_slope": 0.2})
    assert all(m.negative_slope_value == 0.2 for m in by_name.modules() if isinstance(m, activations.LeakyReLU))
    by_class = models.create("small-cnn", activation=nn.ELU)
    assert sum(isinstance(m, nn.ELU) for m in by_class.modules()) == 4
    seen = []
    by_factory = models.create("small-cnn", activation=lambda c: seen.append(c) or nn.ReLU())
    assert seen == [16, 32, 64, 128] and sum(isinstance(m, nn.ReLU) for m in by_factory.modules()) == 4
    acts = [m for m in models.create("resnet20", activation="relu").modules() if isinstance(m, activations.ReLU)]
    assert len({id(m) for m in acts}) == len(acts) == 19


def test_relu_classifier_head():
    model = models.create("small-cnn", head="relu-classifier", in_channels=1)
    assert isinstance(model.head, activations.ReLUClassifier)
    out = model(torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10) and (out >= 0).all()
    with pytest.raises(ValueError, match="relu-classifier"):
        models.create("small-cnn", head="softmax")


def test_mlp_flat_input_for_xor():
    model = models.create("mlp", in_channels=2, num_classes=2, hidden=(4,), input_size=None)
    assert model(torch.randn(5, 2)).shape == (5, 2)
    assert len(activation_sites(model)) == 1


def test_plain_depth_and_padding_mode():
    model = models.create("plain", depth=12, widths=(8, 16), padding_mode="circular")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 11 and all(c.padding_mode == "circular" and c.bias is not None for c in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 10)


def test_models_start_from_he_init():
    torch.manual_seed(0)
    model = models.create("plain-30", activation="prelu")
    conv = model.features[5].conv  # 16 -> 16 channels, fan-in 144
    expected = math.sqrt(2 / (1 + 0.25**2) / 144)
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.1)
    assert (conv.bias == 0).all()
    assert model.head.weight.std().item() == pytest.approx(1 / math.sqrt(64), rel=0.2)


def test_bad_arguments_say_what_is_accepted():
    with pytest.raises(UnknownNameError, match="resnet20"):
        models.create("resnet21")
    with pytest.raises(TypeError, match="options are:.*shortcut"):
        models.create("resnet20", dropout=0.3)
    with pytest.raises(TypeError, match="fixed by the model name"):
        models.create("resnet20", depth=32)
    with pytest.raises(ValueError, match="6n\\+2"):
        models.create("resnet", depth=21)
    with pytest.raises(ValueError, match="in_channels"):
        models.create("small-cnn", in_channels=0)
    with pytest.raises(UnknownNameError, match="relu"):
        models.create("small-cnn", activation="rleu")
