"""Fast CPU paths (``backend="auto"`` on CPU tensors) against the plain-torch spec: the activation recipe."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from rectlab import activations as A
from rectlab.activations import cpu
from rectlab.activations import functional as AF
from spec_check import check_against_spec, layouts

LAYOUTS = layouts()
LOW = (torch.bfloat16,)


def _input(layout: str, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.Tensor:
    return LAYOUTS[layout](torch.Generator().manual_seed(seed)).to(dtype)  # .to keeps dense strides


def _param(n: int, dtype: torch.dtype, low: float = 0.05, high: float = 0.6) -> torch.Tensor:
    return torch.linspace(low, high, n, dtype=dtype).requires_grad_(True)


# name -> (fast CPU path, spec, forward exact)
ELEMENTWISE = {
    "helu": (lambda x: cpu.helu(x, 0.1), lambda x: AF.helu(x, 0.1), True),
    "smelu-0.5": (lambda x: cpu.smelu(x, 0.5), lambda x: AF.smelu(x, 0.5), False),
    "smelu-1": (lambda x: cpu.smelu(x, 1.0), lambda x: AF.smelu(x, 1.0), False),
    "smelu-1.3": (lambda x: cpu.smelu(x, 1.3), lambda x: AF.smelu(x, 1.3), False),
    "gcu": (cpu.gcu, AF.gcu, False),
    "mish": (cpu.mish, AF.mish, False),
    "swish-1.7": (lambda x: cpu.swish(x, 1.7), lambda x: AF.swish(x, 1.7), False),
    "swish-1": (lambda x: cpu.swish(x, 1.0), lambda x: AF.swish(x, 1.0), False),
    "swish-0": (lambda x: cpu.swish(x, 0.0), lambda x: AF.swish(x, 0.0), False),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_fp32(name: str, layout: str) -> None:
    fast, spec, exact = ELEMENTWISE[name]
    check_against_spec(fast, spec, _input(layout), exact=exact)


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("layout", ("3x7x33", "channels_last"))
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_low_precision(name: str, layout: str, dtype: torch.dtype) -> None:
    fast, spec, _ = ELEMENTWISE[name]
    check_against_spec(fast, spec, _input(layout, dtype))


# PReLU and learnable Swish: (x layout, channel dim, per-channel?)
CHANNEL_CASES = {
    "nchw": ("nchw", 1, True),
    "channels_last": ("channels_last", 1, True),
    "transposed": ("transposed", 1, True),
    "sliced": ("sliced", 1, True),
    "3x7x33": ("3x7x33", 1, True),
    "nlc": ("3x7x33", -1, True),
    "shared-1x1x1023": ("1x1x1023", 1, False),
    "shared-channels_last": ("channels_last", 1, False),
}


def _channel_case(case: str, dtype: torch.dtype) -> tuple[torch.Tensor, int, int]:
    layout, dim, per_channel = CHANNEL_CASES[case]
    x = _input(layout, dtype)
    return x, dim, (x.shape[dim] if per_channel else 1)


@pytest.mark.parametrize("dtype", (torch.float32, *LOW), ids=str)
@pytest.mark.parametrize("case", sorted(CHANNEL_CASES))
def test_prelu(case: str, dtype: torch.dtype) -> None:
    x, dim, n = _channel_case(case, dtype)
    w = _param(n, dtype, -0.3, 0.6)  # negative, zero-crossing and positive slopes
    check_against_spec(lambda x, w: cpu.prelu(x, w, dim), lambda x, w: AF.prelu(x, w, dim), x, (w,), exact=True)


@pytest.mark.parametrize("dtype", (torch.float32, *LOW), ids=str)
@pytest.mark.parametrize("case", sorted(CHANNEL_CASES))
def test_swish_learnable(case: str, dtype: torch.dtype) -> None:
    x, dim, n = _channel_case(case, dtype)
    beta = _param(n, dtype, 0.0, 2.0)
    check_against_spec(lambda x, b: cpu.swish(x, b, dim), lambda x, b: AF.swish(x, b, dim), x, (beta,))


@pytest.mark.parametrize(("fast", "spec"), [(cpu.prelu, AF.prelu), (cpu.swish, AF.swish)], ids=("prelu", "swish"))
def test_one_gradient_at_a_time(fast, spec) -> None:
    x = _input("nchw")
    w = _param(3, torch.float32)
    frozen = w.detach()
    check_against_spec(lambda x, w: fast(x, w), lambda x, w: spec(x, w), x, (frozen,))
    g = torch.randn_like(x)
    (dw,) = torch.autograd.grad(fast(x, w), w, g)  # x needs no gradient
    (dw_ref,) = torch.autograd.grad(spec(x, w), w, g)
    torch.testing.assert_close(dw, dw_ref)


def test_prelu_at_zero_takes_the_negative_branch() -> None:
    x = torch.zeros(2, 3, 4, requires_grad=True)
    w = torch.tensor([0.1, 0.2, 0.3], requires_grad=True)
    y = cpu.prelu(x, w)
    y.sum().backward()
    assert y.eq(0).all() and w.grad.eq(0).all()
    torch.testing.assert_close(x.grad, w.detach().view(1, 3, 1).expand(2, 3, 4))


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("prelu", lambda n: (A.PReLU(n), ())),
        ("prelu-shared", lambda n: (A.PReLUShared(), ())),
        ("swish-channelwise", lambda n: (A.SwishChannelwise(n), ())),
        ("swish-learnable", lambda n: (A.SwishLearnable(0.7), ())),
        ("swish", lambda n: (A.Swish(1.7), ())),
        ("smelu", lambda n: (A.SmeLU(0.5), ())),
        ("gcu", lambda n: (A.GCU(), ())),
        ("mish", lambda n: (A.Mish(), ())),
        ("rrelu-eval", lambda n: (A.RReLU(0.1, 0.3).eval(), ())),
    ],
)
def test_gradcheck_float64(name: str, make) -> None:
    m, _ = make(4)
    m = m.double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.linspace(0.1, 0.9, p.numel(), dtype=torch.float64))
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x = torch.where(x.abs() < 0.05, x + 0.1, x)  # away from kinks (0 and +-0.5)
    x = torch.where((x.abs() - 0.5).abs() < 0.05, x + 0.1, x).requires_grad_()
    params = tuple(m.parameters())
    assert gradcheck(lambda x, *p: m(x), (x, *params), eps=1e-6, atol=1e-6)


def test_helu_gradient_is_the_shifted_threshold() -> None:
    x = torch.tensor([-1.0, -0.2, -0.1, -0.05, -0.0, 0.0, 0.05, 2.0], dtype=torch.float64, requires_grad=True)
    y = cpu.helu(x, alpha=0.1)
    assert torch.equal(y, torch.relu(x.detach()))
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_smelu_joints() -> None:
    for b in (0.5, 2.0):
        t = torch.tensor([-b, b, 0.0, -2 * b, 2 * b], dtype=torch.float64, requires_grad=True)
        y = cpu.smelu(t, b)
        y.sum().backward()
        torch.testing.assert_close(y, torch.tensor([0.0, b, b / 4, 0.0, 2 * b], dtype=torch.float64))
        torch.testing.assert_close(t.grad, torch.tensor([0.0, 1.0, 0.5, 0.0, 1.0], dtype=torch.float64))


# ----------------------------------------------------------------------------------------------------
# RReLU: training draws the spec's slopes; evaluation is the spec
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16, torch.float64), ids=str)
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_rrelu_training_is_the_spec_under_one_seed(layout: str, dtype: torch.dtype) -> None:
    x = _input(layout, dtype)
    g = torch.randn(x.shape).to(dtype)
    results = []
    for fn in (cpu.rrelu, AF.rrelu):
        xr = x.detach().clone().requires_grad_(True)
        torch.manual_seed(11)
        y = fn(xr, 0.1, 0.3, training=True)
        (dx,) = torch.autograd.grad(y, xr, g)
        results.append((y, dx))
    (y, dx), (y_ref, dx_ref) = results
    assert torch.equal(y, y_ref) and torch.equal(dx, dx_ref)
    slope = dx[x < 0] / g[x < 0]
    assert slope.min() >= 0.1 * (1 - 2**-7) and slope.max() <= 0.3 * (1 + 2**-7)
    assert torch.equal(dx[x >= 0], g[x >= 0])  # x == 0 and -0 take the identity branch, as the spec


def test_rrelu_seeded_generator_and_module_modes() -> None:
    x = _input("channels_last")
    gen = torch.Generator()
    y1 = cpu.rrelu(x, training=True, generator=gen.manual_seed(3))
    y2 = cpu.rrelu(x, training=True, generator=gen.manual_seed(3))
    y3 = cpu.rrelu(x, training=True, generator=gen.manual_seed(4))
    assert torch.equal(y1, y2) and not torch.equal(y1, y3)
    m = A.RReLU(0.1, 0.3)
    torch.manual_seed(5)
    y_train = m(x)
    torch.manual_seed(5)
    assert torch.equal(y_train, AF.rrelu(x, 0.1, 0.3, training=True))
    assert torch.equal(m.eval()(x), AF.rrelu(x, 0.1, 0.3, training=False))


# ----------------------------------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------------------------------

# name -> (module, its spec as a function of the module and x)
MODULES = {
    "prelu": (lambda: A.PReLU(3), lambda m, x: AF.prelu(x, m.weight, m.dim)),
    "prelu-shared": (lambda: A.PReLUShared(), lambda m, x: AF.prelu(x, m.weight, m.dim)),
    "swish": (lambda: A.Swish(1.7), lambda m, x: AF.swish(x, m.beta)),
    "swish-learnable": (lambda: A.SwishLearnable(0.8), lambda m, x: AF.swish(x, m.beta)),
    "swish-channelwise": (lambda: A.SwishChannelwise(3), lambda m, x: AF.swish(x, m.beta, m.dim)),
    "smelu": (lambda: A.SmeLU(0.5), lambda m, x: AF.smelu(x, m.beta)),
    "helu": (lambda: A.HeLU(0.1), lambda m, x: AF.helu(x, m.alpha)),
    "gcu": (lambda: A.GCU(), lambda m, x: AF.gcu(x)),
    "mish": (lambda: A.Mish(), lambda m, x: AF.mish(x)),
    "rrelu": (lambda: A.RReLU(0.1, 0.3), lambda m, x: AF.rrelu(x, m.lower, m.upper, training=True)),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_auto_runs_the_cpu_path_and_torch_runs_the_spec(name: str) -> None:
    make, spec_fn = MODULES[name]
    auto, spec = make(), make()
    spec.backend = "torch"
    x = _input("channels_last").requires_grad_(True)
    outputs = []
    for m in (auto, spec, None):
        torch.manual_seed(0)
        outputs.append(spec_fn(spec, x) if m is None else m(x))
    y, y_spec, y_direct = outputs
    assert type(y.grad_fn).__module__ == cpu.__name__ or type(y.grad_fn).__name__.endswith("FunctionBackward")
    assert type(y.grad_fn).__name__ != type(y_spec.grad_fn).__name__
    assert torch.equal(y_spec, y_direct)  # backend="torch" is exactly the spec
    torch.testing.assert_close(y, y_spec, rtol=1e-5, atol=1e-5)


def test_cpu_path_is_skipped_where_it_must_be() -> None:
    x = torch.randn(2, 3)
    assert cpu.use_cpu(x, "auto", "prelu", torch.ones(3))
    assert not cpu.use_cpu(x, "torch", "prelu", torch.ones(3))
    assert not cpu.use_cpu(x, "auto", "gelu")  # the spec is PyTorch's native op already
    assert not cpu.use_cpu(x.half(), "auto", "smelu")
    assert not cpu.use_cpu(x.bfloat16(), "auto", "prelu", torch.ones(3))  # mixed dtypes (autocast): the spec
    traced = torch.jit.trace(A.SmeLU(0.5), x)  # tracing (e.g. ONNX export) records the spec's ops
    torch.testing.assert_close(traced(x), AF.smelu(x, 0.5))


def test_rectlab_backend_torch_runs_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(2, 3, requires_grad=True)
    assert type(A.SmeLU()(x).grad_fn).__name__ == "SmeLUFunctionBackward"
    monkeypatch.setenv("RECTLAB_BACKEND", "torch")
    assert not cpu.use_cpu(x, "auto", "smelu")
    assert type(A.SmeLU()(x).grad_fn).__name__ != "SmeLUFunctionBackward"


def test_mixed_dtypes_promote_like_the_spec() -> None:
    m = A.PReLU(3)  # fp32 weight
    x = torch.randn(4, 3, dtype=torch.bfloat16)
    assert m(x).dtype == AF.prelu(x, m.weight).dtype


def test_compile_traces_the_spec_without_graph_breaks() -> None:
    import torch._dynamo

    net = torch.nn.Sequential(A.PReLU(3), A.SmeLU(0.5), A.SwishChannelwise(3), A.HeLU(), A.GCU())
    x = torch.randn(2, 3, 4)
    explanation = torch._dynamo.explain(net)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def test_double_backward_refuses_clearly() -> None:
    x = torch.randn(5, requires_grad=True)
    (dx,) = torch.autograd.grad(cpu.smelu(x, 1.0).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        dx.sum().backward()


def test_no_grad_forward_matches() -> None:
    x = _input("channels_last")
    w = _param(3, torch.float32)
    b = _param(3, torch.float32, 0.5, 1.5)
    with torch.no_grad():
        pairs = [
            (cpu.prelu(x, w), AF.prelu(x, w)),
            (cpu.smelu(x, 0.5), AF.smelu(x, 0.5)),
            (cpu.swish(x, b), AF.swish(x, b)),
            (cpu.swish(x, 1.7), AF.swish(x, 1.7)),
            (cpu.gcu(x), AF.gcu(x)),
            (cpu.helu(x, 0.1), AF.helu(x, 0.1)),
        ]
    for y, ref in pairs:
        assert y.stride() == x.stride()  # layout kept
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)


def test_saved_tensors() -> None:
    """What the backward keeps: PReLU x and the weight (no more), SmeLU and HeLU x."""
    sizes: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        sizes.append(t.numel())
        return t

    x = torch.randn(8, 4, 16, requires_grad=True)
    w = torch.full((4,), 0.25, requires_grad=True)
    for fn, expected in (
        (lambda: cpu.prelu(x, w), [x.numel(), 4]),
        (lambda: cpu.smelu(x, 1.0), [x.numel()]),  # x
        (lambda: cpu.helu(x, 0.1), [x.numel()]),
    ):
        sizes.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        assert sorted(sizes) == sorted(expected)


def test_errors_match_the_spec() -> None:
    with pytest.raises(ValueError, match="channels along dim"):
        cpu.prelu(torch.randn(2, 3, 4), torch.ones(5))
    with pytest.raises(ValueError, match="beta must be > 0"):
        cpu.smelu(torch.randn(3), 0.0)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        cpu.helu(torch.randn(3), -1.0)


def test_empty_and_nan() -> None:
    e = torch.empty(0, 3, requires_grad=True)
    for fn in (lambda t: cpu.prelu(t, torch.ones(3)), lambda t: cpu.smelu(t, 1.0), cpu.gcu):
        y = fn(e)
        y.sum().backward()
        assert y.shape == (0, 3) and e.grad.shape == (0, 3)
    x = torch.tensor([float("nan"), 1.0, -1.0])
    for name, (fast, spec, _) in ELEMENTWISE.items():
        torch.testing.assert_close(fast(x), spec(x), equal_nan=True, msg=name)
    torch.testing.assert_close(cpu.prelu(x, torch.ones(1) * 0.2), AF.prelu(x, torch.ones(1) * 0.2), equal_nan=True)


def _full_size_buffers(fn, numel: int) -> int:
    """How many new tensors of ``numel`` elements the aten ops called by ``fn`` create (outputs of
    ``out=`` and in-place calls are not new)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            given = {t.data_ptr() for t in (*args, *(kwargs or {}).values()) if isinstance(t, torch.Tensor)}
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor) and t.numel() == numel and t.data_ptr() not in given:
                    Count.n += 1
            return out

    with Count():
        fn()
    return Count.n


@pytest.mark.parametrize("channels", (1, 3))
@pytest.mark.parametrize("layout", ("nchw", "channels_last"))
def test_prelu_backward_has_no_full_size_temporary(layout: str, channels: int) -> None:
    """The weight gradient is reduced in the input gradient's buffer before the input gradient is written."""
    x = _input(layout).requires_grad_(True)
    w = torch.full((channels,), 0.25, requires_grad=True)
    y = cpu.prelu(x, w)
    g = torch.randn_like(y)
    assert _full_size_buffers(lambda: torch.autograd.grad(y, (x, w), g), x.numel()) == 1  # dx itself
    y_spec = AF.prelu(x, w)
    assert _full_size_buffers(lambda: torch.autograd.grad(y_spec, (x, w), g), x.numel()) > 2


def test_large_bf16_mish_is_pytorchs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "_MISH_BF16_NATIVE_ABOVE", 100)
    x = torch.randn(4, 50, dtype=torch.bfloat16, requires_grad=True)
    y = cpu.mish(x)
    assert type(y.grad_fn).__name__ == "MishBackward0"  # F.mish
    assert type(cpu.mish(x[:1]).grad_fn).__name__ == "MishFunctionBackward"
