"""rectlab.surgery: activation call sites, swapping and EraseReLU on torchvision and rectlab models.

torchvision models are built once per module with weights=None and run on 1x3x64x64 inputs. VGG-16-BN
is built without its default init and with a small classifier (same structure, same activation sites),
because its 25088x4096 layer alone costs seconds to initialize on a CPU.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F
import torchvision
from torch import nn

from rectlab import activations, models
from rectlab.registry import UnknownNameError
from rectlab.surgery import (
    SurgeryError,
    SurgeryWarning,
    activation_sites,
    erase_relu,
    format_sites,
    original_type,
    swap_activations,
)

X = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def small_vgg16_bn() -> nn.Module:
    m = torchvision.models.vgg16_bn(weights=None, init_weights=False)
    m.classifier[0] = nn.Linear(512 * 7 * 7, 32)
    m.classifier[3] = nn.Linear(32, 32)
    m.classifier[6] = nn.Linear(32, 10)
    return m


BUILDERS = {
    "resnet18": lambda: torchvision.models.resnet18(weights=None),
    "resnet50": lambda: torchvision.models.resnet50(weights=None),
    "vgg16_bn": small_vgg16_bn,
    "densenet121": lambda: torchvision.models.densenet121(weights=None),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None),
}


@pytest.fixture(scope="module")
def tv():
    torch.manual_seed(0)
    built = {}

    def get(name):
        if name not in built:
            built[name] = BUILDERS[name]().eval()
        return built[name]

    return get


def snapshot(model: nn.Module):
    """What 'the input model is untouched' means: same parameters and buffers, same module objects."""
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [(n, id(m), type(m)) for n, m in model.named_modules()],
    )


def assert_untouched(model: nn.Module, snap) -> None:
    state, mods = snap
    assert [(n, id(m), type(m)) for n, m in model.named_modules()] == mods
    now = model.state_dict()
    assert now.keys() == state.keys() and all(torch.equal(now[k], state[k]) for k in state)


def forward_backward(model: nn.Module, x: torch.Tensor = X) -> torch.Tensor:
    model.train()
    out = model(x.expand(2, -1, -1, -1))  # batch 2 so BatchNorm trains
    out.float().sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    return out


# ---------------------------------------------------------------------------------------------
# Sites and EraseReLU counts on torchvision models


@pytest.mark.parametrize(
    "name, n_sites, n_modules, n_erased",
    [
        ("resnet18", 17, 8, 8),  # stem + 2 calls of self.relu per BasicBlock x 8
        ("resnet50", 49, 16, 16),  # stem + 3 per Bottleneck x 16
        ("vgg16_bn", 15, 5, 5),  # 13 in features (5 stages) + 2 in the classifier
        ("densenet121", 121, 58, 58),  # 2 per _DenseLayer x 58, 3 transitions, relu0, the final F.relu
        ("mobilenet_v2", 35, 17, 0),  # ReLU6s; InvertedResidual is linear at its output
    ],
)
def test_torchvision_site_and_erase_counts(tv, name, n_sites, n_modules, n_erased):
    model = tv(name)
    snap = snapshot(model)
    sites = activation_sites(model, X)
    assert len(sites) == n_sites
    assert [s.index for s in sites] == list(range(n_sites))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        erased_model, report = erase_relu(model)
    assert len(report.modules) == n_modules
    assert len(report.erased) == n_erased
    if n_erased == 0:
        assert any(issubclass(w.category, SurgeryWarning) and "linear" in str(w.message) for w in caught)
        assert "nothing to erase" in str(caught[-1].message)
    assert_untouched(model, snap)

    after = activation_sites(erased_model, X)
    assert len(after) == n_sites, "erased sites stay sites (identity), so indices are stable"
    assert [s.index for s in after if s.op == "identity"] == [s.index for s in report.erased]
    forward_backward(erased_model)


def test_resnet18_sites_know_their_owner_and_call(tv):
    sites = activation_sites(tv("resnet18"), X)
    stem, first, second = sites[0], sites[1], sites[2]
    assert (stem.owner, stem.target, stem.shape) == ("", "relu", (1, 64, 32, 32))
    assert (first.owner, first.owner_type, first.target, first.call) == ("layer1.0", "BasicBlock", "layer1.0.relu", 0)
    assert (second.owner, second.target, second.call, second.channels) == ("layer1.0", "layer1.0.relu", 1, 64)
    assert second.scope == ("layer1", "layer1.0") and second.traced and second.kind == "module"
    assert sites[-1].channels == 512
    assert "layer1.0.relu (call 1)" in format_sites(sites)


def test_erase_last_targets_the_relu_after_the_residual_add(tv):
    _, report = erase_relu(tv("resnet18"))
    assert all(s.call == 1 and s.target.endswith(".relu") for s in report.erased)
    _, report = erase_relu(tv("resnet50"))
    assert all(s.call == 2 for s in report.erased)  # Bottleneck: the third call of self.relu
    _, report = erase_relu(tv("resnet50"), location=1)
    assert all(s.call == 1 for s in report.erased)
    _, report = erase_relu(tv("resnet50"), location="first")
    assert all(s.call == 0 for s in report.erased)


def test_vgg_stages_are_the_sites_between_poolings(tv):
    _, report = erase_relu(tv("vgg16_bn"))
    assert report.modules == (
        "features[0:6]",
        "features[7:13]",
        "features[14:23]",
        "features[24:33]",
        "features[34:43]",
    )
    assert [s.target for s in report.erased] == [
        "features.5",
        "features.12",
        "features.22",
        "features.32",
        "features.42",
    ]


def test_densenet_erases_relu2_of_every_dense_layer(tv):
    model, report = erase_relu(tv("densenet121"))
    assert all(s.target.endswith("relu2") for s in report.erased)
    assert isinstance(model.features.denseblock1.denselayer1.relu2, activations.Identity)


# ---------------------------------------------------------------------------------------------
# swap_activations


@pytest.mark.parametrize("name", list(BUILDERS))
def test_relu_to_relu_swap_is_exact_and_keeps_parameter_names(tv, name):
    model = tv(name)
    snap = snapshot(model)
    swapped = swap_activations(model, nn.ReLU6 if name == "mobilenet_v2" else "relu")  # a class spec works too
    assert_untouched(model, snap)
    swapped.eval()
    with torch.no_grad():
        assert torch.equal(swapped(X), model(X))
    # Parameter-free swap: the original state_dict loads strictly into the new model.
    swapped.load_state_dict(model.state_dict(), strict=True)


def test_prelu_swap_gives_every_site_its_own_module_with_its_channels(tv):
    model = tv("resnet18")
    swapped = swap_activations(model, "prelu", example_input=X)
    block = swapped.layer1[0]
    assert isinstance(block, fx.GraphModule) and original_type(block) is torchvision.models.resnet.BasicBlock
    assert block.relu is not block.relu_1 and isinstance(block.relu_1, activations.PReLU)
    sites = activation_sites(swapped, X)
    assert len(sites) == 17 and all(s.op == "prelu" for s in sites)
    assert len({s.target for s in sites}) == 17
    for s in sites:
        assert swapped.get_submodule(s.target).num_parameters == s.channels
    missing, unexpected = swapped.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and len(missing) == 17 and all(k.endswith(".weight") and "relu" in k for k in missing)
    forward_backward(swapped)
    # A swapped model can be erased: the rewritten block still counts as a BasicBlock.
    _, report = erase_relu(swapped)
    assert len(report.erased) == 8 and all(s.op == "prelu" for s in report.erased)


def test_swap_with_match_predicate_and_kwargs(tv):
    swapped = swap_activations(
        tv("resnet18"), "leaky-relu", match=lambda s: s.owner.startswith("layer4"), negative_slope=0.2
    )
    ops = [s.op for s in activation_sites(swapped)]
    assert ops[:13] == ["relu"] * 13 and ops[13:] == ["leaky-relu"] * 4
    assert swapped.layer4[1].relu_1.negative_slope_value == 0.2


def test_swap_on_rectlab_model_replaces_modules_only():
    model = models.create("resnet20")
    x = torch.randn(2, 3, 16, 16)
    swapped = swap_activations(model, "prelu", example_input=x)
    assert not any(isinstance(m, fx.GraphModule) for m in swapped.modules())
    assert type(swapped) is type(model) and swapped.layer2[0].act1.num_parameters == 32
    model.eval(), swapped.eval()
    same = swap_activations(model, "relu")
    with torch.no_grad():
        assert torch.equal(same(x), model(x))


def test_inplace_edits_the_given_model():
    model = models.create("small-cnn", in_channels=1)
    out = swap_activations(model, "elu", inplace=True)
    assert out is model and isinstance(model.block1.act, activations.ELU)


# ---------------------------------------------------------------------------------------------
# Functional calls and the fallbacks


class FunctionalNet(nn.Module):
    """Activations applied by functions, in the model's own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3)
        self.c2 = nn.Conv2d(8, 16, 3)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = self.c2(x).relu_()
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(F.leaky_relu(x, 0.2))


def test_functional_sites_are_found_and_rewritten():
    torch.manual_seed(0)
    net, x = FunctionalNet().eval(), torch.randn(2, 3, 16, 16)
    sites = activation_sites(net, x)
    assert [(s.op, s.kind, s.owner, s.channels) for s in sites] == [
        ("relu", "function", "", 8),
        ("relu", "method", "", 16),
        ("leaky-relu", "function", "", 16),
    ]
    same = swap_activations(net, "relu", match="relu")
    assert original_type(same) is FunctionalNet and isinstance(same.relu_f0, activations.ReLU)
    with torch.no_grad():
        assert torch.equal(same(x), net(x))
    prelu = swap_activations(net, "prelu", example_input=x)
    assert [prelu.get_submodule(s.target).num_parameters for s in activation_sites(prelu)] == [8, 16, 16]
    assert set(prelu.state_dict()) - set(net.state_dict()) == {
        "relu_f0.weight",
        "relu_f1.weight",
        "leaky_relu_f2.weight",
    }
    forward_backward(prelu, x)


class DataDependentBlock(nn.Module):
    """torch.fx cannot trace this forward; its one ReLU module is called twice."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        if x.sum() >= 0:  # always true after a ReLU, but data-dependent, so fx cannot trace it
            x = self.relu(self.conv(x))
        return self.relu(x + 1)


class PartlyTraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()
        self.b1 = DataDependentBlock(4)

    def forward(self, x):
        return self.b1(self.act(self.stem(x)))


def test_untraceable_submodule_falls_back_to_modules_and_errors_name_it():
    model, x = PartlyTraceable(), torch.ones(1, 3, 8, 8)
    with pytest.warns(SurgeryWarning, match="'b1'"):
        sites = activation_sites(model, x)
    assert [(s.target, s.call, s.traced) for s in sites] == [
        ("act", 0, True),
        ("b1.relu", 0, False),
        ("b1.relu", 1, False),
    ]
    with pytest.warns(SurgeryWarning):
        swapped = swap_activations(model, "gelu", example_input=x)  # every call of b1.relu changes: fine
    assert isinstance(swapped.b1.relu, activations.GELU)
    with pytest.warns(SurgeryWarning), pytest.raises(SurgeryError, match="'b1'.*only 1 of its 2 calls"):
        erase_relu(model, module_types=[DataDependentBlock], example_input=x)
    with pytest.warns(SurgeryWarning), pytest.raises(SurgeryError, match="pass example_input"):
        erase_relu(model, module_types=["DataDependentBlock"])
    with pytest.warns(SurgeryWarning), pytest.raises(SurgeryError, match="share one PReLU"):
        swap_activations(model, "prelu", example_input=x)


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)
        self.a = nn.ReLU()
        self.b = nn.ReLU()

    def forward(self, x):
        x = self.a(self.c(x))
        return self.b(x) if x.mean() > 0 else x


def test_untraceable_model_uses_module_replacement():
    model, x = Untraceable(), torch.ones(1, 3, 8, 8)
    with pytest.warns(SurgeryWarning, match="could not trace the model"):
        swapped = swap_activations(model, "prelu", example_input=x)
    assert swapped.a.num_parameters == 4 and isinstance(swapped.b, activations.PReLU)
    forward_backward(swapped, x)


# ---------------------------------------------------------------------------------------------
# EraseReLU options


def test_proportion_select_and_seed(tv):
    model = tv("resnet18")
    _, half = erase_relu(model, proportion=0.5, seed=1)
    _, again = erase_relu(model, proportion=0.5, seed=1)
    assert len(half.erased) == 4 and half.selected == again.selected
    assert {erase_relu(model, proportion=0.5, seed=s)[1].selected for s in range(4)} != {half.selected}
    _, deep = erase_relu(model, location=0, proportion=0.5, select="last")
    assert deep.selected == ("layer3.0", "layer3.1", "layer4.0", "layer4.1")
    _, shallow = erase_relu(model, proportion=0.25, select="first")
    assert shallow.selected == ("layer1.0", "layer1.1")
    with pytest.warns(SurgeryWarning, match="nothing to erase"):
        _, none = erase_relu(model, proportion=0.01)  # round(0.08) = 0 modules
    assert none.erased == ()


def test_erasing_twice_is_a_no_op_and_match_restricts_ops(tv):
    once, _ = erase_relu(tv("resnet18"))
    with pytest.warns(SurgeryWarning, match="already erased"):
        _, twice = erase_relu(once)
    assert twice.erased == ()
    mixed = swap_activations(tv("resnet18"), "elu", match=lambda s: s.owner == "layer1.0" and s.call == 1)
    _, report = erase_relu(mixed, match="relu")  # location counts the ReLU sites only
    assert len(report.erased) == 8 and report.erased[0].target == "layer1.0.relu" and report.erased[0].call == 0
    _, report = erase_relu(mixed, match="elu")
    assert [s.owner for s in report.erased] == ["layer1.0"] and len(report.skipped) == 7


def test_rectlab_models_have_basic_module_rules():
    for name, n in [("resnet20", 9), ("preact-resnet20", 9), ("vgg16", 5), ("plain-22", 21), ("small-cnn", 4)]:
        model, report = erase_relu(models.create(name))
        assert len(report.erased) == n, name
        forward_backward(model, torch.randn(1, 3, 16, 16))
    _, report = erase_relu(models.create("resnet20"))
    assert {s.target.rsplit(".", 1)[1] for s in report.erased} == {"act2"}


def test_custom_models_name_their_basic_module():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return F.relu(self.conv(x)) + F.relu(x)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.Sequential(Block(), Block(), Block())

        def forward(self, x):
            return self.blocks(x)

    net, x = Net(), torch.randn(2, 4, 8, 8)
    with pytest.raises(SurgeryError, match=r"module_types=\['MyBlock'\]"):
        erase_relu(net)
    by_name, report = erase_relu(net, module_types="Block")
    assert len(report.erased) == 3 and all(s.kind == "function" for s in report.erased)
    _, by_pred = erase_relu(net, location=0, predicate=lambda name, m: name in ("blocks.0", "blocks.2"))
    assert by_pred.selected == ("blocks.0", "blocks.2")
    with torch.no_grad():  # erasing the last F.relu of each block: relu(conv(x)) + x
        expected = x
        for block in net.blocks:
            expected = F.relu(block.conv(expected)) + expected
        assert torch.allclose(by_name(x), expected)


def test_bad_inputs_give_clear_errors(tv):
    model = tv("resnet18")
    with pytest.raises(ValueError, match="location"):
        erase_relu(model, location="middle")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        erase_relu(model, proportion=1.5)
    with pytest.raises(ValueError, match="select"):
        erase_relu(model, select="every-other")
    with pytest.raises(SurgeryError, match="out of range.*layer1.0.*2 activation site"):
        erase_relu(model, location=2)
    with pytest.raises(ValueError, match="unknown op.*'rleu'"):
        swap_activations(model, "gelu", match="rleu")
    with pytest.raises(UnknownNameError, match="prelu"):
        swap_activations(model, "prelux")
    with pytest.raises(TypeError, match="instance"):
        swap_activations(model, nn.ReLU())
    with pytest.raises(ValueError, match="example_input"):
        swap_activations(model, "prelu")
    with pytest.raises(ValueError, match="failed on example_input"):
        activation_sites(model, torch.randn(1, 5, 64, 64))
    with pytest.raises(TypeError, match="example_input"):
        activation_sites(model, [1, 2, 3])
    with pytest.raises(TypeError, match="nn.Module"):
        activation_sites(copy.deepcopy)
    with pytest.warns(SurgeryWarning, match="no activation site matched"):
        swap_activations(model, "gelu", match="elu")


def test_untraceable_part_with_only_function_calls_is_named_in_the_warning():
    class Hidden(nn.Module):
        def forward(self, x):
            return F.relu(x) if x.sum() > 0 else x

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = Hidden()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.hidden(x))

    with pytest.warns(SurgeryWarning, match="'hidden'.*not seen"):
        sites = activation_sites(Net())
    assert [s.target for s in sites] == ["act"]


def test_a_module_registered_under_two_paths_is_replaced_at_both():
    class Holder(nn.Module):
        def __init__(self, act: nn.Module, use: bool) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.act = act
            self.use = use

        def forward(self, x):
            x = self.conv(x)
            return self.act(x) if self.use else x

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            shared = nn.ReLU()
            self.a = Holder(shared, use=False)
            self.b = Holder(shared, use=True)  # fx names the module 'a.act'; 'b' calls it

        def forward(self, x):
            return self.b(self.a(x))

    (site,) = activation_sites(Net())
    assert (site.target, site.owner) == ("a.act", "b")
    swapped = swap_activations(Net(), "gelu")
    assert isinstance(swapped.b.act, activations.GELU)
