"""Reference activations and modules: closed forms, gradients, shapes, edges, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import rectlab
from rectlab import activations as A
from rectlab.activations import functional as AF
from rectlab.activations import ops
from rectlab.registry import UnknownNameError

DTYPE = torch.float64


def _x(*shape: int, seed: int = 0, away_from: tuple[float, ...] = (0.0,), margin: float = 1e-2) -> torch.Tensor:
    """Random float64 input that keeps ``margin`` away from the kinks in ``away_from`` (for gradcheck)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=DTYPE) * 2
    for k in away_from:
        near = (x - k).abs() < margin
        x = torch.where(near, x + 3 * margin * torch.sign(x - k + 1e-12), x)
    return x


# name -> (constructor kwargs, closed form in plain python math applied elementwise)
def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


CLOSED_FORMS = {
    "relu": ({}, lambda v: max(0.0, v)),
    "leaky-relu": ({"negative_slope": 0.2}, lambda v: v if v > 0 else 0.2 * v),
    "prelu-shared": ({"init": 0.25}, lambda v: v if v > 0 else 0.25 * v),
    "elu": ({"alpha": 1.3}, lambda v: v if v > 0 else 1.3 * (math.exp(v) - 1)),
    "celu": ({"alpha": 0.7}, lambda v: max(0.0, v) + min(0.0, 0.7 * (math.exp(v / 0.7) - 1))),
    "selu": ({}, lambda v: AF.SELU_SCALE * (v if v > 0 else AF.SELU_ALPHA * (math.exp(v) - 1))),
    "gelu": ({}, lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),
    "gelu-tanh": ({}, lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))),
    "swish": ({"beta": 1.7}, lambda v: v * _sig(1.7 * v)),
    "swish-learnable": ({"beta": 0.5}, lambda v: v * _sig(0.5 * v)),
    "silu": ({}, lambda v: v * _sig(v)),
    "mish": ({}, lambda v: v * math.tanh(math.log1p(math.exp(v)))),
    "softplus": ({"beta": 2.0}, lambda v: math.log1p(math.exp(2.0 * v)) / 2.0),
    "smelu": (
        {"beta": 0.5},
        lambda v: v if v >= 0.5 else (0.0 if v <= -0.5 else (v + 0.5) ** 2 / 2.0),
    ),
    "helu": ({"alpha": 0.1}, lambda v: max(0.0, v)),
    "gcu": ({}, lambda v: v * math.cos(v)),
    "identity": ({}, lambda v: v),
    "rrelu": ({"lower": 0.1, "upper": 0.3}, lambda v: v if v >= 0 else 0.2 * v),  # eval mode: mean slope
}

# Kinks where the derivative jumps; gradcheck inputs stay away from them.
KINKS = {"smelu": (-0.5, 0.5), "helu": (0.0, -0.1)}


def test_every_registered_name_has_a_closed_form_test() -> None:
    tested = set(CLOSED_FORMS) | {"prelu", "swish-channelwise"}
    assert set(A.names()) == tested


def test_every_module_runs_an_op_of_the_table_and_every_op_has_a_module() -> None:
    module_ops = {A.get(name).op for name in A.names()}
    assert module_ops == set(ops.names())
    for op in ops.TABLE:
        assert op.reference is getattr(AF, op.ident), op.name  # the spec is functional.<ident>
    spec_functions = {name for name in AF.__all__ if callable(getattr(AF, name))} - {"broadcast_param"}
    assert spec_functions == {op.ident for op in ops.TABLE}  # functional holds the specs of the table's ops
    with pytest.raises(UnknownNameError, match="known ops: relu, leaky-relu"):
        ops.get("leaky_relu")  # one spelling: dashes


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_forward_matches_closed_form(name: str) -> None:
    kwargs, fn = CLOSED_FORMS[name]
    m = A.create(name, **kwargs).double().eval()
    x = torch.cat([_x(200, seed=1), torch.tensor([0.0, -0.5, 0.5, -1e-3, 1e-3, 25.0, -25.0], dtype=DTYPE)])
    expected = torch.tensor([fn(float(v)) for v in x], dtype=DTYPE)
    torch.testing.assert_close(m(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n in CLOSED_FORMS if not ops.get(A.get(n).op).surrogate_gradient))
def test_gradcheck_float64(name: str) -> None:
    kwargs, _ = CLOSED_FORMS[name]
    m = A.create(name, **kwargs).double().eval()
    x = _x(3, 7, away_from=KINKS.get(name, (0.0,))).requires_grad_()
    params = [p for p in m.parameters()]
    assert gradcheck(lambda x, *p: m(x), (x, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["prelu", "swish-channelwise"])
def test_gradcheck_per_channel_parameters(name: str) -> None:
    m = A.create(name, channels=4).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.linspace(0.1, 0.9, p.numel(), dtype=DTYPE))
    x = _x(2, 4, 3, 5).requires_grad_()
    assert gradcheck(lambda x, w: m(x), (x, next(m.parameters())), eps=1e-6, atol=1e-6)


def test_helu_backward_is_shifted_threshold() -> None:
    x = torch.tensor([-1.0, -0.2, -0.05, 0.0, 0.05, 2.0], dtype=DTYPE, requires_grad=True)
    y = AF.helu(x, alpha=0.1)
    torch.testing.assert_close(y, torch.relu(x.detach()), rtol=0, atol=0)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 1.0], dtype=DTYPE))
    # away from (-alpha, 0] the hysteresis gradient equals the true ReLU gradient
    m = A.HeLU(alpha=0.1).double()
    xg = _x(3, 7, away_from=(0.0, -0.1)).requires_grad_()
    xg = torch.where((xg > -0.1) & (xg <= 0), xg - 0.5, xg).detach().requires_grad_()
    assert gradcheck(m, (xg,), eps=1e-6, atol=1e-6)


def test_zero_edges() -> None:
    z = torch.zeros(4, dtype=DTYPE, requires_grad=True)
    AF.relu(z).sum().backward()
    assert z.grad.tolist() == [0.0] * 4  # PyTorch convention: relu'(0) = 0

    w = torch.tensor([0.3], dtype=DTYPE, requires_grad=True)
    z = torch.zeros(4, dtype=DTYPE, requires_grad=True)
    out = AF.prelu(z, w)
    out.sum().backward()
    assert out.tolist() == [0.0] * 4
    assert z.grad.tolist() == pytest.approx([0.3] * 4)  # x = 0 takes the negative branch, like torch's prelu
    assert w.grad.item() == 0.0

    # SmeLU is C1: value and slope continuous at both joints
    for b in (0.5, 2.0):
        t = torch.tensor([-b, b, 0.0], dtype=DTYPE, requires_grad=True)
        y = AF.smelu(t, b)
        y.sum().backward()
        torch.testing.assert_close(y, torch.tensor([0.0, b, b / 4], dtype=DTYPE))
        torch.testing.assert_close(t.grad, torch.tensor([0.0, 1.0, 0.5], dtype=DTYPE))


def test_prelu_matches_torch_prelu_forward_and_backward() -> None:
    x = _x(2, 5, 4, 3, seed=3)
    w = torch.linspace(0.05, 0.5, 5, dtype=DTYPE)
    x1, w1 = x.clone().requires_grad_(), w.clone().requires_grad_()
    x2, w2 = x.clone().requires_grad_(), w.clone().requires_grad_()
    y1, y2 = AF.prelu(x1, w1), F.prelu(x2, w2)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(w1.grad, w2.grad)


SHAPES = [(1, 1, 1023), (3, 7, 33), (2, 6, 5, 7)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["relu", "prelu", "prelu-shared", "swish-channelwise", "elu", "smelu", "mish"])
def test_odd_shapes_and_layouts(name: str, shape: tuple[int, ...]) -> None:
    channels = shape[1]
    m = A.create(name, channels=channels)
    if any(True for _ in m.parameters()):
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.linspace(0.1, 0.9, p.numel()))
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(7))
    ref = m(x.contiguous())
    strided = torch.zeros(*shape[:-1], 2 * shape[-1])
    strided[..., ::2] = x
    variants = [strided[..., ::2]]  # non-contiguous view holding the same values
    assert not variants[0].is_contiguous()
    if x.dim() == 4:
        variants.append(x.contiguous(memory_format=torch.channels_last))
    for v in variants:
        torch.testing.assert_close(m(v), ref, rtol=1e-6, atol=1e-6)
        xv = v.detach().clone().requires_grad_()
        m(xv).square().sum().backward()
        xr = x.detach().clone().requires_grad_()
        m(xr).square().sum().backward()
        torch.testing.assert_close(xv.grad, xr.grad, rtol=1e-5, atol=1e-6)


def test_prelu_channel_last_dim() -> None:
    x = torch.randn(2, 9, 4)  # (N, L, C)
    m = A.PReLU(num_parameters=4, dim=-1)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.0, 0.1, 0.2, 0.3]))
    expected = torch.where(x > 0, x, x * m.weight.detach())
    torch.testing.assert_close(m(x), expected)


def test_rrelu_training_slopes_within_bounds_and_eval_mean() -> None:
    m = A.RReLU(lower=0.1, upper=0.3)
    x = -torch.rand(10000) - 0.1
    m.train()
    ratio = m(x) / x
    assert ratio.min() >= 0.1 - 1e-6 and ratio.max() <= 0.3 + 1e-6
    assert ratio.std() > 0.03  # slopes really are random per element
    m.eval()
    torch.testing.assert_close(m(x) / x, torch.full_like(x, 0.2))


def test_inplace_modules_modify_input() -> None:
    for name in ("relu", "leaky-relu", "elu", "celu", "selu", "silu", "mish"):
        x = torch.randn(50)
        out = A.create(name, inplace=True)(x)
        assert out.data_ptr() == x.data_ptr(), name
        # every constructor accepts inplace=False
    for name in A.names():
        A.create(name, channels=3, inplace=False)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(UnknownNameError) as e:
        rectlab.get_activation("prelu-sharde")
    msg = str(e.value)
    assert "prelu-shared" in msg and "Did you mean" in msg and "smelu" in msg


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("smelu", {"beta": -1.0}, "beta must be > 0"),
        ("swish", {"beta": -0.5}, "beta must be >= 0"),
        ("prelu", {}, "needs the channel count"),
        ("prelu", {"num_parameters": 0}, "positive int"),
        ("rrelu", {"lower": 0.5, "upper": 0.1}, "lower <= upper"),
        ("gelu", {"approximate": "fast"}, "approximate"),
        ("relu", {"backend": "cuda"}, "backend must be one of"),
        ("elu", {"nonsense": 1}, "bad arguments"),
    ],
)
def test_bad_parameters_raise_clear_errors(name: str, kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        A.create(name, **kwargs)


def test_prelu_channel_mismatch_at_call_time() -> None:
    m = A.PReLU(num_parameters=8)
    with pytest.raises(ValueError, match=r"8 values but the input has 3 channels.*num_parameters=3"):
        m(torch.randn(2, 3, 4, 4))


def test_factory_accepts_names_classes_and_callables() -> None:
    assert isinstance(A.factory("prelu")(12), A.PReLU)
    assert A.factory("prelu")(12).num_parameters == 12
    assert isinstance(A.factory(torch.nn.ReLU)(5), torch.nn.ReLU)
    assert isinstance(A.factory(A.SwishChannelwise)(5), A.SwishChannelwise)
    assert A.factory(lambda c: torch.nn.PReLU(c))(6).num_parameters == 6
    assert A.get(None) is None and A.create("") is None
    assert A.get(A.ReLU) is A.ReLU
    with pytest.raises(UnknownNameError):
        A.factory("relux")


def test_relu_classifier_predicts_argmax_of_rectified_scores() -> None:
    torch.manual_seed(0)
    head = A.ReLUClassifier(6, 4)
    h = torch.randn(10, 6)
    scores = head(h)
    assert (scores >= 0).all()
    assert torch.equal(head.predict(h), scores.argmax(-1))


def test_extra_repr_shows_parameters() -> None:
    assert "negative_slope=0.2" in repr(A.LeakyReLU(0.2))
    assert "num_parameters=16" in repr(A.create("prelu", channels=16))
    assert "beta=1.5" in repr(A.SmeLU(1.5))


# ----------------------------------------------------------------------------------------------------
# Names with parameters: the one syntax of command lines, specs and Python
# ----------------------------------------------------------------------------------------------------


def test_names_carry_parameters_everywhere_a_name_is_read() -> None:
    assert A.parse_spec("smelu:beta=0.5") == ("smelu", {"beta": 0.5})
    assert A.parse_spec(" leaky-relu:negative_slope=0.2,inplace=true ") == (
        "leaky-relu",
        {"negative_slope": 0.2, "inplace": True},
    )
    assert A.parse_spec("search:max(x,tanh(x))") == ("search:max(x,tanh(x))", {})  # a prefix takes the rest
    assert A.split_specs("relu,smelu:beta=0.5,inplace=true,gelu,search:max(x,tanh(x))") == [
        "relu",
        "smelu:beta=0.5,inplace=true",
        "gelu",
        "search:max(x,tanh(x))",
    ]
    assert A.format_spec(*A.parse_spec("smelu:beta=0.50")) == "smelu:beta=0.5"
    assert A.parse_kwargs("hidden=512,batch-norm=true,stem=small") == {
        "hidden": 512,
        "batch_norm": True,
        "stem": "small",
    }
    module = A.create("smelu:beta=0.5")
    assert isinstance(module, A.SmeLU) and module.beta == 0.5
    assert A.get("prelu:init=0.1") is A.PReLU
    assert A.create("prelu:init=0.1", channels=4).weight.tolist() == pytest.approx([0.1] * 4)
    assert rectlab.get_activation("leaky-relu:negative_slope=0.3").negative_slope() == pytest.approx(0.3)
    net = rectlab.models.create("mlp", activation="smelu:beta=2", hidden=(8,), in_channels=1, input_size=4)
    assert [m.beta for m in net.modules() if isinstance(m, A.SmeLU)] == [2.0]


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("smelu:beta", UnknownNameError, r"unknown activation prefix 'smelu:'.*NAME:key=value"),
        ("smelu:beta=1,beta=2", A.ActivationSpecError, "sets 'beta' twice"),
        ("smelux:beta=1", UnknownNameError, "Did you mean 'smelu'"),
        ("smelu:gamma=1", TypeError, "unexpected keyword argument 'gamma'"),
    ],
)
def test_bad_parameters_in_names_are_one_clear_error(text: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        A.create(text)
    with pytest.raises(A.ActivationSpecError, match="follows no activation with parameters"):
        A.split_specs("relu,beta=1")
    with pytest.raises(ValueError, match="sets beta and the keyword arguments set it again"):
        A.create("smelu:beta=1", beta=2)


def test_accepts_tells_what_training_may_pass() -> None:
    class Plain(torch.nn.Module):
        def __init__(self, alpha: float = 1.0) -> None:
            super().__init__()
            self.alpha = alpha

    assert A.accepts("prelu", "backend") and A.accepts("smelu:beta=1", "backend")
    assert not A.accepts(Plain, "backend") and A.accepts(Plain, "alpha")
