"""rectlab.init: gains (closed forms and quadrature), the per-layer He plan, and the variance claim of
He et al. 2015: with He init the second moment of the pre-activations stays put over 30 plain layers,
with Xavier init it collapses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from scipy import integrate, stats
from torch import nn

from rectlab import activations, init, models


def gaussian_moment(f, derivative: bool = False) -> float:
    """E_{z~N(0,1)}[f(z)^2] (or of f') by adaptive quadrature, as an independent reference."""

    def g(z: float) -> float:
        x = torch.tensor([z], dtype=torch.float64, requires_grad=True)
        y = f(x)
        if derivative:
            (y,) = torch.autograd.grad(y.sum(), x)
        return y.item() ** 2 * stats.norm.pdf(z)

    return integrate.quad(g, -12, 12, points=[-1.0, 0.0, 1.0], limit=200)[0]


@pytest.mark.parametrize(
    "activation, slope",
    [
        ("relu", 0.0),
        ("helu", 0.0),
        ("identity", 1.0),
        (activations.LeakyReLU(0.2), 0.2),
        (activations.RReLU(0.1, 0.3), 0.2),
        (nn.ReLU(), 0.0),
        (nn.LeakyReLU(0.3), 0.3),
        (nn.PReLU(init=0.5), 0.5),
        ("prelu", 0.25),
        (activations.PReLU, 0.25),
    ],
)
def test_rectifier_gains_are_closed_form(activation, slope):
    expected = math.sqrt(2.0 / (1.0 + slope**2))
    assert init.gain(activation) == pytest.approx(expected, abs=1e-12)
    assert init.gain(activation, mode="fan_out") == pytest.approx(expected, abs=1e-12)


def test_prelu_gain_follows_its_current_slopes():
    p = activations.PReLU(4)
    with torch.no_grad():
        p.weight.copy_(torch.tensor([0.0, 0.2, 0.4, 0.6]))  # mean 0.3
    assert init.gain(p) == pytest.approx(math.sqrt(2 / 1.09))


def test_quadrature_reproduces_the_rectifier_closed_form():
    # second_moment never takes the closed-form shortcut, so this checks the quadrature itself.
    assert init.second_moment("relu") == pytest.approx(0.5, abs=1e-12)
    assert init.second_moment(activations.LeakyReLU(0.2)) == pytest.approx((1 + 0.04) / 2, abs=1e-12)
    assert init.second_moment("relu", mode="fan_out") == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("name", ["elu", "celu", "gelu", "gelu-tanh", "silu", "mish", "softplus", "smelu", "gcu"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_smooth_gains_match_independent_quadrature(name, mode):
    module = activations.create(name).double()
    reference = gaussian_moment(module, derivative=mode == "fan_out")
    assert init.second_moment(name, mode) == pytest.approx(reference, rel=1e-6)
    assert init.gain(name, mode) == pytest.approx(1 / math.sqrt(reference), rel=1e-6)


def test_selu_is_self_normalizing():
    assert init.gain("selu") == pytest.approx(1.0, abs=1e-6)
    assert init.gain(nn.SELU) == pytest.approx(1.0, abs=1e-6)


def test_gain_accepts_names_classes_and_instances_and_caches():
    assert init.gain("elu") == init.gain(activations.ELU) == init.gain(activations.ELU()) == init.gain(nn.ELU())
    assert init.gain(nn.ReLU6(inplace=True)) == pytest.approx(math.sqrt(2), rel=1e-3)  # in-place is fine
    learnable = activations.SwishLearnable(beta=1.0)
    assert init.gain(learnable) == pytest.approx(init.gain("silu"), rel=1e-9)
    with torch.no_grad():
        learnable.beta.fill_(5.0)  # learned parameters are re-read, not cached
    assert init.gain(learnable) != pytest.approx(init.gain("silu"), rel=1e-3)
    channelwise = activations.SwishChannelwise(3)
    assert init.gain(channelwise) == pytest.approx(init.gain("silu"), rel=1e-9)


def test_gain_errors():
    with pytest.raises(ValueError, match="fan_in"):
        init.gain("relu", mode="fan_avg")

    class Zero(nn.Module):
        def forward(self, x):
            return x * 0

    with pytest.raises(ValueError, match="non-zero"):
        init.gain(Zero())
    with pytest.raises(TypeError, match="registered name"):
        init.gain(3.0)


def test_he_plan_follows_the_call_graph():
    model = models.create("preact-resnet20", activation="leaky-relu", activation_kwargs={"negative_slope": 0.2})
    plan = {p.layer: p for p in init.he_plan(model)}
    g = math.sqrt(2 / 1.04)
    # conv1 of a pre-act block feeds bn2 -> act2; conv2 feeds the add, then the next block's bn1 -> act1.
    assert plan["layer1.0.conv1"].gain == pytest.approx(g) and plan["layer1.0.conv1"].activation == "leaky-relu"
    assert plan["layer1.0.conv2"].site == plan["layer1.1.conv1"].site - 1
    assert plan["layer3.2.conv2"].activation == "leaky-relu"  # through the add to the final BN-act
    assert plan["head"].gain == 1.0 and plan["head"].activation is None
    assert all(p.found_by == "graph" for p in plan.values())
    assert plan["layer2.0.shortcut.0"].std == pytest.approx(g / math.sqrt(16))  # 1x1 projection, fan-in 16


def test_he_plan_gives_linear_bottlenecks_gain_one():
    plan = {p.layer: p for p in init.he_plan(torchvision.models.mobilenet_v2(weights=None))}
    assert plan["features.1.conv.1"].activation is None and plan["features.1.conv.1"].gain == 1.0  # projection
    assert plan["features.2.conv.0.0"].activation == "relu6"  # expansion conv -> BN -> ReLU6
    assert plan["features.2.conv.1.0"].fan == 9  # depthwise: one input channel per group


def test_functional_sites_and_untraced_layers_get_gains():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(F.leaky_relu(self.conv(x), 0.5).mean((2, 3)))

    plan = init.he_plan(Net())
    assert plan[0].gain == pytest.approx(math.sqrt(2 / 1.25)) and plan[0].activation == "leaky-relu"

    class Opaque(nn.Module):  # untraceable: layers are matched to the next activation module by order
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.act = nn.PReLU(init=0.5)

        def forward(self, x):
            return self.act(self.conv(x)) if x.sum() > 0 else x

    with pytest.warns(UserWarning, match="could not trace"):
        (item,) = init.he_plan(Opaque())
    assert item.found_by == "module-order" and item.gain == pytest.approx(math.sqrt(2 / 1.25))


def test_he_init_sets_std_and_zero_bias_and_is_reproducible():
    model = models.create("plain-22", activation="prelu")
    model, report = init.he_init_(model, generator=torch.Generator().manual_seed(0), return_report=True)
    conv = model.features[10].conv
    item = next(r for r in report if r.layer == "features.10.conv")
    assert item.std == pytest.approx(math.sqrt(2 / (1 + 0.25**2) / (32 * 9)))
    assert conv.weight.std().item() == pytest.approx(item.std, rel=0.05)
    assert all((m.bias == 0).all() for m in model.modules() if isinstance(m, nn.Conv2d))
    again = init.he_init_(models.create("plain-22", activation="prelu"), generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    fan_out = {r.layer: r for r in init.he_plan(model, mode="fan_out")}
    assert fan_out["features.0.conv"].fan == 16 * 9
    init.he_init_(model, distribution="uniform")
    assert model.features[10].conv.weight.abs().max() <= math.sqrt(3) * item.std + 1e-6


def plain_ensemble(activation: str, copies: int, width: int = 64, layers: int = 30, **kwargs) -> nn.Sequential:
    """``copies`` independent plain nets (3x3 conv + activation, no BN, no skips) as one net of grouped convs.

    A conv with ``groups=copies`` has block-diagonal weights, so group k only ever sees group k: this *is* an
    ensemble of independently initialized nets (He init uses the per-group fan-in ``9 * width``), run with
    one conv call per layer instead of one per net. Circular padding removes the zero-padding border loss
    (about 16% of the signal per layer at 4x4, whatever the init), so only the init is under test.
    """
    body: list[nn.Module] = []
    c = 3
    for _ in range(layers):
        body.append(nn.Conv2d(copies * c, copies * width, 3, padding=1, padding_mode="circular", groups=copies))
        body.append(activations.create(activation, channels=copies * width, **kwargs))
        c = width
    return nn.Sequential(*body)


def second_moments_per_layer(net: nn.Sequential, copies: int) -> torch.Tensor:
    """E[y^2] of the input of every activation site (averaged over the ensemble), layer by layer."""
    moments: list[float] = []
    hooks = [
        m.register_forward_hook(lambda m, inp, out: moments.append(inp[0].pow(2).mean().item()))
        for m in net
        if not isinstance(m, nn.Conv2d)
    ]
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        net(x.repeat(1, copies, 1, 1))
    for h in hooks:
        h.remove()
    return torch.tensor(moments)


@pytest.mark.parametrize("activation, kwargs", [("relu", {}), ("prelu", {}), ("leaky-relu", {"negative_slope": 0.2})])
def test_he_init_keeps_the_variance_of_30_plain_layers(activation, kwargs):
    """He et al. 2015, eq. 10. Their analysis is an expectation over the weights: a single net of finite width
    drifts randomly (at width 64 by a factor of several over 30 layers), so the second moment is averaged over
    64 independently initialized nets. Using ReLU's gain for PReLU(0.25) instead would drift by
    1.0625^29 = 5.8x, and Xavier's gain by 2^-29."""
    net = plain_ensemble(activation, copies=64, **kwargs)
    init.he_init_(net, generator=torch.Generator().manual_seed(0))
    moments = second_moments_per_layer(net, copies=64)
    assert len(moments) == 30
    assert moments.max() / moments.min() < 2.0, moments


def test_xavier_init_makes_30_relu_layers_collapse():
    net = plain_ensemble("relu", copies=2)
    init.xavier_init_(net, generator=torch.Generator().manual_seed(0))
    moments = second_moments_per_layer(net, copies=2)
    assert moments[-1] / moments[0] < 1e-6  # each ReLU layer halves it: 2^-29 ~ 2e-9
