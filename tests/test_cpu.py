"""Fast CPU paths (``backend="auto"`` on CPU tensors) against the plain-torch spec: the activation recipe."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck
from torch.utils.checkpoint import checkpoint

from rectlab import activations as A
from rectlab.activations import cpu, ops
from rectlab.activations import functional as AF
from spec_check import check_against_spec, layouts

LAYOUTS = layouts()
LOW = (torch.bfloat16,)


def _input(layout: str, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.Tensor:
    return LAYOUTS[layout](torch.Generator().manual_seed(seed)).to(dtype)  # .to keeps dense strides


def _param(n: int, dtype: torch.dtype, low: float = 0.05, high: float = 0.6) -> torch.Tensor:
    return torch.linspace(low, high, n, dtype=dtype).requires_grad_(True)


CPU_OPS = [op for op in ops.TABLE if op.cpu]
"""The ops with a CPU path."""

TENSOR_OPS = [op for op in CPU_OPS if op.tensor_params]
"""Those with a per-channel or shared tensor parameter (PReLU's weight, Swish's beta)."""

# case id -> (fast CPU path, spec, forward exact): the op table's cases without a tensor parameter, with every
# example value (the CPU paths branch on some: Swish's beta = 1 is SiLU, SmeLU's beta = 1 skips a pass)
ELEMENTWISE = {
    case.id: (case.bind(getattr(cpu, op.ident)), case.spec(), op.piecewise_linear)
    for op in CPU_OPS
    for case in ops.cases(op, every_example=True)
    if not case.tensors and not case.save_mask
}


def _tensor_param(op: ops.Op, n: int, dtype: torch.dtype) -> torch.Tensor:
    """``n`` values spread over the range of the op's examples (PReLU: negative, zero-crossing and positive slopes;
    Swish: from beta = 0); one value is the range's start."""
    (p,) = op.tensor_params
    return torch.linspace(min(p.examples), max(p.examples), n, dtype=dtype).requires_grad_(True)


def _with_param(op: ops.Op, fn, dim: int = 1):
    (p,) = op.tensor_params
    return lambda x, value: fn(x, **{p.name: value}, dim=dim)


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
@pytest.mark.parametrize("op", TENSOR_OPS, ids=lambda op: op.name)
def test_tensor_parameter(op: ops.Op, case: str, dtype: torch.dtype) -> None:
    x, dim, n = _channel_case(case, dtype)
    value = _tensor_param(op, n, dtype)
    fast, spec = _with_param(op, getattr(cpu, op.ident), dim), _with_param(op, op.reference, dim)
    check_against_spec(fast, spec, x, (value,), exact=op.piecewise_linear)


@pytest.mark.parametrize("op", TENSOR_OPS, ids=lambda op: op.name)
def test_one_gradient_at_a_time(op: ops.Op) -> None:
    fast, spec = _with_param(op, getattr(cpu, op.ident)), _with_param(op, op.reference)
    x = _input("nchw")
    w = _param(3, torch.float32)
    frozen = w.detach()
    check_against_spec(fast, spec, x, (frozen,))
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


CPU_MODULES = sorted(name for name in A.names() if A.get(name).op in ops.names(cpu=True))
"""The registered activations whose op has a CPU path."""


def _module(name: str, channels: int = 3) -> nn.Module:
    """Registered activation ``name`` built with the first example of each parameter its constructor takes."""
    cls = A.get(name)
    accepted = inspect.signature(cls).parameters
    kwargs = {p.name: p.examples[0] for p in ops.get(cls.op).params if p.name in accepted}
    return A.create(name, channels=channels, **kwargs)


def _spec_of(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The op's reference with the parameters of module ``m`` (kept under the parameters' names)."""
    op = ops.get(m.op)
    kwargs = {p.name: getattr(m, p.name) for p in op.params}
    if "dim" in inspect.signature(op.reference).parameters:
        kwargs["dim"] = m.dim
    if op.random:
        kwargs["training"] = m.training
    return op.reference(x, **kwargs)


@pytest.mark.parametrize("name", [n for n in CPU_MODULES if not ops.get(A.get(n).op).surrogate_gradient])
def test_gradcheck_float64(name: str) -> None:
    m = _module(name, 4).double()
    if ops.get(m.op).random:
        m.eval()  # evaluation mode: the mean slope
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


@pytest.mark.parametrize("name", CPU_MODULES)
def test_module_auto_runs_the_cpu_path_and_torch_runs_the_spec(name: str) -> None:
    auto, spec = _module(name), _module(name)
    spec.backend = "torch"
    x = _input("channels_last").requires_grad_(True)
    outputs = []
    for m in (auto, spec, None):
        torch.manual_seed(0)
        outputs.append(_spec_of(spec, x) if m is None else m(x))
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
    with torch.no_grad():
        for op in CPU_OPS:
            for case in ops.cases(op, every_example=True):
                if case.save_mask:
                    continue
                tensors = [_tensor_param(op, 3 if form == "channel" else 1, x.dtype) for _, form, _, _ in case.tensors]
                y, ref = case.bind(getattr(cpu, op.ident))(x, *tensors), case.spec()(x, *tensors)
                assert y.stride() == x.stride(), case.id  # layout kept
                torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6, msg=lambda m, c=case: f"{c.id}: {m}")


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


def _saved_sizes(fn) -> list[int]:
    """The numel of every tensor autograd saves while ``fn`` runs."""
    sizes: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sizes


@pytest.mark.parametrize("channels", (1, 4))
def test_learnable_swish_saves_two_derivatives_and_writes_the_input_gradient_over_one(channels: int) -> None:
    """Saved: dy/dx and dy/dbeta, not x. The backward allocates no full-size buffer when autograd frees the
    graph after it (the input gradient is written over dy/dx), one when the graph is kept or a hook saw dy/dx;
    the gradients are the spec's every time."""
    x = torch.randn(8, 4, 16, requires_grad=True)
    beta = torch.linspace(0.5, 1.5, channels).requires_grad_(True)
    g = torch.randn(x.shape)
    expected = torch.autograd.grad(AF.swish(x, beta), (x, beta), g)
    n = x.numel()
    assert _saved_sizes(lambda: cpu.swish(x, beta)) == [n, n]
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        hooked = cpu.swish(x, beta)
    y = cpu.swish(x, beta)
    assert type(y.grad_fn).__name__ == "SwishFunctionBackward"
    grads: list[tuple[torch.Tensor, ...]] = []
    for out, keep, fresh in ((hooked, False, 1), (y, True, 1), (y, False, 0)):

        def backward(out: torch.Tensor = out, keep: bool = keep) -> None:
            grads.append(torch.autograd.grad(out, (x, beta), g, retain_graph=keep))

        assert _full_size_buffers(backward, n) == fresh
    for dx, db in grads:
        torch.testing.assert_close(dx, expected[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(db, expected[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels", (1, 3))
def test_learnable_swish_under_checkpointing_is_the_spec(channels: int) -> None:
    """Non-reentrant checkpointing recomputes the forward through saved-tensor hooks."""
    x = _input("nchw").requires_grad_(True)
    beta = torch.linspace(0.3, 1.7, channels).requires_grad_(True)
    g = torch.randn(x.shape)
    y = checkpoint(lambda t: cpu.swish(t, beta), x, use_reentrant=False)
    got = torch.autograd.grad(y, (x, beta), g)
    expected = torch.autograd.grad(AF.swish(x, beta), (x, beta), g)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", (torch.float32, *LOW), ids=str)
@pytest.mark.parametrize("case", sorted(CHANNEL_CASES))
def test_learnable_swish_on_large_inputs_saves_only_x(case: str, dtype: torch.dtype, monkeypatch) -> None:
    """From `_SWISH_RECOMPUTE_FROM` bytes on, `SwishRecomputeFunction`: the spec's values and gradients, only
    ``x`` (and a per-channel beta's view) saved, one full-size buffer in the backward (the input gradient's)."""
    monkeypatch.setattr(cpu, "_SWISH_RECOMPUTE_FROM", 400)  # the cases have 210 or more elements
    op = ops.get("swish")
    x, dim, n = _channel_case(case, dtype)
    value = _tensor_param(op, n, dtype)
    check_against_spec(_with_param(op, cpu.swish, dim), _with_param(op, op.reference, dim), x, (value,))
    if dtype != torch.float32:
        return
    xr = x.detach().requires_grad_(True)
    assert type(cpu.swish(xr, value, dim).grad_fn).__name__ == "SwishRecomputeFunctionBackward"
    small = torch.randn(2, 3, 4, requires_grad=True)  # 96 bytes
    assert type(cpu.swish(small, torch.ones(3, requires_grad=True)).grad_fn).__name__ == "SwishFunctionBackward"
    sizes = _saved_sizes(lambda: cpu.swish(xr, value, dim))
    assert sorted(sizes, reverse=True) == [x.numel()] + ([n] if n > 1 else [])
    y = cpu.swish(xr, value, dim)
    g = torch.randn_like(x)
    # + the temporary of a per-channel reduction whose channels are not dim 1 of contiguous tensors
    fresh = 1 if case in ("nchw", "3x7x33", "sliced", "shared-1x1x1023", "shared-channels_last") else 2
    assert _full_size_buffers(lambda: torch.autograd.grad(y, (xr, value), g), x.numel()) == fresh


@pytest.mark.parametrize("large", (False, True), ids=("small", "large"))
@pytest.mark.parametrize("dtype", (torch.float32, *LOW), ids=str)
@pytest.mark.parametrize("layout", ("nchw", "channels_last", "transposed"))
def test_learnable_swish_rounds_like_the_spec_at_any_beta(
    layout: str, dtype: torch.dtype, large: bool, monkeypatch
) -> None:
    """Betas where ``beta x`` puts ``sigmoid`` close to 1 for the inputs of 6 and 30 (``1 - s`` keeps few bits there
    and ``x^2`` scales the error up), a negative one and a small one, shared and per channel, on both paths."""
    if large:
        monkeypatch.setattr(cpu, "_SWISH_RECOMPUTE_FROM", 0)
    x = _input(layout, dtype)
    for value in (0.05, 0.3, -0.5, 5.0):
        for n in (1, x.shape[1]):
            beta = (value + 0.1 * torch.linspace(-1, 1, n)).to(dtype).requires_grad_(True)
            check_against_spec(cpu.swish, AF.swish, x, (beta,))


def test_large_bf16_mish_is_pytorchs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "_MISH_BF16_NATIVE_ABOVE", 100)
    x = torch.randn(4, 50, dtype=torch.bfloat16, requires_grad=True)
    y = cpu.mish(x)
    assert type(y.grad_fn).__name__ == "MishBackward0"  # F.mish
    assert type(cpu.mish(x[:1]).grad_fn).__name__ == "MishFunctionBackward"
