"""Models by name from torchvision and timm (``tv:NAME``, ``timm:NAME``): adapted to the data, swapped and
erased through rectlab.surgery, pretrained weights loaded from a local file; everything randomly initialised
(nothing is downloaded)."""

from __future__ import annotations

import warnings
from collections import Counter

import pytest
import torch
from torch import nn

from rectlab import models
from rectlab.registry import UnknownNameError
from rectlab.study import SpecError, parse_spec
from rectlab.surgery import SurgeryWarning, activation_sites, erase_relu, swap_activations
from rectlab.training.config import TrainConfig

timm = pytest.importorskip("timm")

X16 = torch.randn(2, 3, 16, 16)
X32 = torch.randn(2, 3, 32, 32)  # ConvNeXt downsamples 32x


def ops(model: nn.Module, x: torch.Tensor = X16) -> Counter:
    return Counter(s.op for s in activation_sites(model, x))


def test_tv_resnet18_gets_classes_channels_small_stem_and_the_activation():
    x = torch.randn(2, 1, 16, 16)
    net = models.create("tv:resnet18", activation="prelu", num_classes=7, in_channels=1, example_input=x)
    assert net(x).shape == (2, 7)
    assert net.conv1.in_channels == 1 and net.conv1.stride == (1, 1)  # small stem for a 16x16 image
    assert isinstance(net.maxpool, nn.Identity)
    sites = activation_sites(net, x)
    assert Counter(s.op for s in sites) == {"prelu": 17}  # stem + 2 per BasicBlock x 8
    for s in sites:  # channel-wise PReLU: the channel count of its own site
        assert net.get_submodule(s.target).num_parameters == s.channels


def test_native_stem_for_imagenet_sized_inputs_and_on_request():
    big = models.create("tv:resnet18", activation=None, example_input=torch.zeros(2, 3, 96, 96))
    assert big.conv1.stride == (2, 2) and isinstance(big.maxpool, nn.MaxPool2d)
    native = models.create("tv:resnet18", activation=None, stem="native", example_input=X16)
    assert native.conv1.stride == (2, 2)
    with pytest.raises(ValueError, match="stem='bogus' is not valid"):
        models.create("tv:resnet18", stem="bogus")


def test_tv_pretrained_weights_from_a_file_are_adapted(tmp_path):
    import torchvision

    torch.manual_seed(0)
    source = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    net = models.create(
        "tv:resnet18",
        activation=None,
        num_classes=10,
        in_channels=1,
        pretrained=str(path),
        example_input=torch.zeros(2, 1, 16, 16),
    )
    assert torch.equal(net.layer3[1].conv2.weight, source.layer3[1].conv2.weight)
    assert torch.allclose(net.conv1.weight, source.conv1.weight.sum(1, keepdim=True))  # gray = R + G + B
    assert net.fc.out_features == 10  # the 1000-class head is re-initialized
    bad = tmp_path / "bad.pth"
    torch.save({"something": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="do not fit"):
        models.create("tv:resnet18", activation=None, pretrained=str(bad), example_input=X16)


def test_timm_pretrained_weights_from_a_file(tmp_path):
    source = timm.create_model("resnet18")
    path = tmp_path / "r18.pth"
    torch.save(source.state_dict(), path)
    net = models.create(
        "timm:resnet18",
        activation=None,
        num_classes=10,
        in_channels=1,
        pretrained=str(path),
        example_input=torch.zeros(2, 1, 16, 16),
    )
    assert torch.equal(net.layer2[0].conv1.weight, source.layer2[0].conv1.weight)
    assert net.fc.out_features == 10 and net.conv1.in_channels == 1


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownNameError, match="Did you mean tv:resnet18"):
        models.check_name("tv:resnet19")
    with pytest.raises(UnknownNameError, match="unknown timm model 'resnet5x'"):
        models.create("timm:resnet5x")
    with pytest.raises(UnknownNameError, match="unknown model 'foo:bar'"):
        models.create("foo:bar")
    models.check_name("timm:vit_tiny_patch16_224.augreg_in21k")  # a pretrained tag is part of a valid name


def test_study_specs_accept_and_check_library_names():
    spec = parse_spec('[base]\nmodel = "timm:resnet18"\n[grid]\nactivation = ["relu", "prelu"]\n')
    assert spec.base.model == "timm:resnet18"
    with pytest.raises(SpecError, match=r"line 2\).*unknown torchvision model 'resnetz'"):
        parse_spec('[base]\nmodel = "tv:resnetz"\n[grid]\nactivation = ["relu"]\n')


# -- surgery on timm architectures (site counts of the randomly initialised models) ----------------------


@pytest.fixture(scope="module")
def timm_models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "resnet50": timm.create_model("resnet50", num_classes=10),
        "efficientnet_b0": timm.create_model("efficientnet_b0", num_classes=10),
        "convnext_tiny": timm.create_model("convnext_tiny", num_classes=10),
        "vit": timm.create_model("vit_tiny_patch16_224", num_classes=10, img_size=16, patch_size=4),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "native", "n_sites", "n_blocks", "erased_last"),
    [
        ("resnet50", "relu", 49, 16, 16),  # stem + 3 per Bottleneck; the ReLU after the residual add is erased
        ("efficientnet_b0", "silu", 49, 16, 0),  # linear bottlenecks: nothing after the last conv to erase
        ("convnext_tiny", "gelu", 18, 18, 18),  # one GELU (a function call inside timm's GELU) per block
        ("vit", "gelu", 12, 12, 12),  # one GELU in each block's MLP
    ],
)
def test_swap_and_erase_relu_on_timm_models(timm_models, name, native, n_sites, n_blocks, erased_last):
    model = timm_models[name]
    x = X32 if name == "convnext_tiny" else X16
    assert ops(model, x) == {native: n_sites}

    swapped = swap_activations(model, "smelu")
    assert ops(swapped, x) == {"smelu": n_sites}
    assert swapped(x).shape == (2, 10)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        erased, report = erase_relu(model)
    assert len(report.modules) == n_blocks and len(report.erased) == erased_last
    assert ops(erased, x) == {k: v for k, v in {native: n_sites - erased_last, "identity": erased_last}.items() if v}
    if erased_last == 0:
        assert any("linear at its output" in str(w.message) for w in caught if w.category is SurgeryWarning)
        erased, report = erase_relu(model, location="first")  # the expansion's activation of every block
        assert len(report.erased) == n_blocks
    erased(x).sum().backward()


@pytest.mark.slow
def test_timm_model_with_channelwise_prelu_and_erase_relu_trains_one_epoch():
    from rectlab.training.loop import train_one

    cfg = TrainConfig(
        model="timm:resnet18",
        activation="prelu",
        erase_relu=1.0,
        dataset="digits",
        epochs=1,
        batch_size=64,
        train_limit=128,
        test_limit=64,
        device="cpu",
        augment=False,
    )
    result = train_one(cfg)
    assert len(result.extras["erased_sites"]) == 8  # the last ReLU of each of the 8 BasicBlocks
    slopes = result.extras["slopes"]
    assert len(slopes) == 17 - 8 and slopes[0]["num_parameters"] == 64
    assert 0 <= result.final["test_error"] <= 100
