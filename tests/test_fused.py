"""Fused (Triton) activations against the plain-torch reference: forward, input and parameter gradients.

Without a GPU the kernels run in Triton's CPU interpreter: the ``dev`` fixture sets ``TRITON_INTERPRET=1``
for the test only (``monkeypatch``), and ``rectlab.kernels.load`` builds the kernels for that mode
whatever was imported before, so these tests do not depend on import order. With a GPU they run the
compiled kernels on CUDA at the same small shapes; the ``gpu`` tests add realistic shapes.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from rectlab import activations as A
from rectlab.activations import functional as AF
from rectlab.activations import fused, ops, selfcheck
from spec_check import check_against_spec, grad_and_value, layouts

LOW = (torch.bfloat16, torch.float16)


# ----------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------

LAYOUTS = layouts()
_grad_and_value = grad_and_value
_check = check_against_spec  # the tolerances of the runtime self-check's comparison


def _input(layout: str, dtype: torch.dtype, device: str, seed: int = 0) -> torch.Tensor:
    x = LAYOUTS[layout](torch.Generator().manual_seed(seed))
    return x.to(dtype).to(device)  # .to keeps the strides of dense tensors


# ----------------------------------------------------------------------------------------------------
# Elementwise ops
# ----------------------------------------------------------------------------------------------------

# case id -> (fused, reference, piecewise-linear forward is exact): the op table's cases of the fused ops
# without a tensor parameter (the elementwise family, and RReLU in evaluation)
ELEMENTWISE = {
    case.id: (case.bind(getattr(fused, op.ident)), case.spec(), op.piecewise_linear)
    for op in ops.TABLE
    if op.triton and not op.tensor_params
    for case in ops.cases(op)
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_fp32(dev: str, name: str, layout: str) -> None:
    fused_fn, ref_fn, exact = ELEMENTWISE[name]
    _check(fused_fn, ref_fn, _input(layout, torch.float32, dev), exact=exact)


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_low_precision(dev: str, name: str, dtype: torch.dtype) -> None:
    fused_fn, ref_fn, _ = ELEMENTWISE[name]
    _check(fused_fn, ref_fn, _input("3x7x33", dtype, dev))


def test_output_keeps_the_input_layout(dev: str) -> None:
    x = _input("channels_last", torch.float32, dev)
    assert fused.gelu(x).stride() == x.stride()
    assert fused.prelu(x, torch.full((3,), 0.25, device=dev)).stride() == x.stride()
    sliced = _input("sliced", torch.float32, dev)
    assert fused.relu(sliced).is_contiguous()


def test_empty_tensor(dev: str) -> None:
    x = torch.empty(0, 3, device=dev, requires_grad=True)
    y = fused.mish(x)
    assert y.shape == (0, 3)
    y.sum().backward()
    assert x.grad.shape == (0, 3)


def test_nan_propagates_like_torch(dev: str) -> None:
    x = torch.tensor([float("nan"), 1.0, -1.0], device=dev)
    for fused_fn, ref_fn, _ in ELEMENTWISE.values():
        torch.testing.assert_close(fused_fn(x), ref_fn(x), equal_nan=True)


# ----------------------------------------------------------------------------------------------------
# PReLU and Swish: per-channel parameters on every layout
# ----------------------------------------------------------------------------------------------------

# name -> (make x from a generator, dim, channels or 1 for shared)
CHANNEL_CASES = {
    "nchw": (lambda g: torch.randn(2, 3, 5, 7, generator=g), 1, 3),  # rows tiling (H*W < 64)
    "nchw-planes": (lambda g: torch.randn(2, 3, 9, 9, generator=g), 1, 3),  # planes tiling (H*W >= 64)
    "channels_last": (lambda g: torch.randn(2, 5, 7, 3, generator=g).permute(0, 3, 1, 2), 1, 3),
    "channels_last-planes": (lambda g: torch.randn(2, 9, 9, 3, generator=g).permute(0, 3, 1, 2), 1, 3),
    "nc": (lambda g: torch.randn(40, 5, generator=g), 1, 5),
    "nlc": (lambda g: torch.randn(4, 5, 6, generator=g), -1, 6),
    "ncl": (lambda g: torch.randn(4, 5, 6, generator=g), 1, 5),
    "many-rows": (lambda g: torch.randn(300, 5, 6, generator=g), 1, 5),  # rows loop of several tiles
    "sliced": (lambda g: torch.randn(2, 3, 5, 14, generator=g)[..., ::2], 1, 3),
    "transposed": (lambda g: torch.randn(2, 7, 3, 5, generator=g).transpose(1, 2), 1, 3),
    "shared-3x7x33": (lambda g: torch.randn(3, 7, 33, generator=g), 1, 1),
    "shared-1x1x1023": (lambda g: torch.randn(1, 1, 1023, generator=g), 1, 1),
}


def _channel_input(case: str, dtype: torch.dtype, dev: str) -> tuple[torch.Tensor, int, int]:
    make, dim, channels = CHANNEL_CASES[case]
    x = make(torch.Generator().manual_seed(0))
    x.masked_fill_(x.abs() < 0.1, 0.0)  # x == 0 edges, in place so that the layout stays
    return x.to(dtype).to(dev), dim, channels


# the fused ops with a per-channel or shared tensor parameter (PReLU's weight, Swish's beta)
CHANNEL_OPS = [op for op in ops.TABLE if op.triton and op.tensor_params]


def _channel_param(op: ops.Op, channels: int, dev: str) -> torch.Tensor:
    """Values around the op's example, distinct per channel so that a wrong channel index shows."""
    (p,) = op.tensor_params
    spread = torch.rand(channels, generator=torch.Generator().manual_seed(2)) - 0.5
    return (p.examples[0] + spread).to(dev).requires_grad_(True)


def _with_param(op: ops.Op, fn, dim: int):
    (p,) = op.tensor_params
    return lambda x, value: fn(x, **{p.name: value}, dim=dim)


@pytest.mark.parametrize("dtype", (torch.float32, *LOW), ids=str)
@pytest.mark.parametrize("case", sorted(CHANNEL_CASES))
@pytest.mark.parametrize("op", CHANNEL_OPS, ids=lambda op: op.name)
def test_channel_parameter(dev: str, op: ops.Op, case: str, dtype: torch.dtype) -> None:
    x, dim, channels = _channel_input(case, dtype, dev)
    value = _channel_param(op, channels, dev)
    fast, spec = _with_param(op, getattr(fused, op.ident), dim), _with_param(op, op.reference, dim)
    _check(fast, spec, x, (value,), exact=op.piecewise_linear)


@pytest.mark.parametrize("beta", ops.get("swish").params[0].examples, ids=lambda b: f"beta{b:g}")
def test_swish_fixed_beta(dev: str, beta: float) -> None:
    x = _input("nchw", torch.float32, dev)
    _check(lambda x: fused.swish(x, beta), lambda x: AF.swish(x, beta), x)
    frozen = torch.tensor([beta], device=dev)
    _check(lambda x: fused.swish(x, frozen), lambda x: AF.swish(x, frozen), x)


def test_prelu_weight_only_gradient(dev: str) -> None:
    x = torch.randn(4, 3, 8, device=dev)  # no grad wanted for x
    w = torch.full((3,), 0.25, device=dev, requires_grad=True)
    g = torch.randn(4, 3, 8, device=dev)
    (dw,) = torch.autograd.grad(fused.prelu(x, w), w, g)
    w_ref = w.detach().clone().requires_grad_(True)
    (dw_ref,) = torch.autograd.grad(AF.prelu(x, w_ref), w_ref, g)
    torch.testing.assert_close(dw, dw_ref, rtol=1e-5, atol=1e-5)


def test_prelu_errors(dev: str) -> None:
    x = torch.randn(2, 3, 4, device=dev)
    with pytest.raises(ValueError, match="channels along dim"):
        fused.prelu(x, torch.ones(5, device=dev))
    with pytest.raises(ValueError, match="freeze the weight"):
        fused.prelu(x, torch.ones(3, device=dev, requires_grad=True), save_mask=True)
    with pytest.raises(TypeError, match="float64"):
        fused.relu(x.double())


# ----------------------------------------------------------------------------------------------------
# RReLU in training: random slopes regenerated from the seed
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", (torch.float32, *LOW), ids=str)
@pytest.mark.parametrize("save_mask", (False, True), ids=("x", "mask"))
def test_rrelu_training(dev: str, dtype: torch.dtype, save_mask: bool) -> None:
    lower, upper = 0.1, 0.3
    x = (torch.randn(3, 7, 333) * 3).to(dtype).to(dev)
    x.view(-1)[:3] = 0.0
    x.requires_grad_(True)
    torch.manual_seed(7)
    y = fused.rrelu(x, lower, upper, training=True, save_mask=save_mask)
    g = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, x, g)
    pos = x.detach() >= 0
    assert torch.equal(y[pos], x.detach()[pos]) and torch.equal(dx[pos], g[pos])
    slope = (y[~pos].float() / x.detach()[~pos].float()).cpu()
    rel = 0 if dtype == torch.float32 else 2.0 ** -(8 if dtype == torch.bfloat16 else 11)  # output rounding
    assert slope.min() >= lower * (1 - rel) - 1e-7 and slope.max() <= upper * (1 + rel) + 1e-7
    assert abs(slope.mean().item() - (lower + upper) / 2) < 0.01  # ~3500 draws of U(0.1, 0.3)
    # backward consistent with forward: dx = g * (y / x) on the negative side
    expected = (g[~pos].float() * y[~pos].float() / x.detach()[~pos].float()).cpu()
    torch.testing.assert_close(dx[~pos].float().cpu(), expected, rtol=4 * max(rel, 1e-6), atol=1e-6)
    # same seed -> same result; another seed -> other slopes
    torch.manual_seed(7)
    assert torch.equal(fused.rrelu(x.detach(), lower, upper, training=True), y.detach())
    torch.manual_seed(8)
    assert not torch.equal(fused.rrelu(x.detach(), lower, upper, training=True), y.detach())


def test_rrelu_generator_and_layouts(dev: str) -> None:
    x = _input("channels_last", torch.float32, dev)
    gen = torch.Generator(device=dev)
    y1 = fused.rrelu(x, training=True, generator=gen.manual_seed(3))
    y2 = fused.rrelu(x, training=True, generator=gen.manual_seed(3))
    assert torch.equal(y1, y2) and y1.stride() == x.stride()
    s = _input("sliced", torch.float32, dev)
    assert torch.equal(fused.rrelu(s, training=True, generator=gen.manual_seed(3))[s >= 0], s[s >= 0])


# ----------------------------------------------------------------------------------------------------
# The 1-bit mask memory saver
# ----------------------------------------------------------------------------------------------------


def _saved_bytes(fn) -> int:
    sizes: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        sizes.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(sizes)


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16), ids=str)
def test_save_mask_saves_one_bit_per_element(dev: str, dtype: torch.dtype) -> None:
    x = torch.randn(64, 1000, device=dev, dtype=dtype, requires_grad=True)  # 64,000 elements
    n = x.numel()
    for op in ops.TABLE:
        masked = [case for case in ops.cases(op) if case.save_mask]
        if not op.triton or not masked:
            continue
        case = masked[0]
        fn = getattr(fused, op.ident)
        tensors = [torch.full((x.shape[1],), value, device=dev) for _, _, value, _ in case.tensors]  # frozen
        extra = sum(t.numel() * 4 for t in tensors)  # PReLU keeps its weight
        for save_mask, expected in ((False, n * x.element_size() + extra), (True, n // 8 + extra)):
            run = dataclasses.replace(case, save_mask=save_mask).bind(fn)
            assert _saved_bytes(lambda r=run, t=tensors: r(x, *t)) == expected, (case.id, save_mask)
    seed_bytes = 8
    assert _saved_bytes(lambda: fused.rrelu(x, training=True, save_mask=True)) == n // 8 + seed_bytes


def test_save_mask_refused_where_it_cannot_work(dev: str) -> None:
    x = torch.randn(8, device=dev)
    with pytest.raises(ValueError, match="piecewise-linear"):
        fused.ElementwiseFunction.apply(x, "gelu", 0.0, 0.0, True)


# ----------------------------------------------------------------------------------------------------
# Modules: backend="triton" matches backend="torch"
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(A.names()) - {"identity"}))
def test_module_triton_matches_torch(dev: str, name: str) -> None:
    torch.manual_seed(0)
    ref = A.create(name, channels=3, backend="torch").to(dev).eval()
    mod = A.create(name, channels=3, backend="triton").to(dev).eval()
    mod.load_state_dict(ref.state_dict())
    for m in (ref, mod):  # move parameters off their init so that every gradient is non-trivial
        for p in m.parameters():
            p.data.add_(torch.linspace(0.1, 0.3, p.numel(), device=dev).view_as(p))
    x = _input("channels_last", torch.float32, dev)
    y_ref, g_ref = _grad_and_value(lambda x, *ps: ref(x), x, (), torch.ones_like(x))
    y, g = _grad_and_value(lambda x, *ps: mod(x), x, (), torch.ones_like(x))
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g[0], g_ref[0], rtol=1e-5, atol=1e-5)
    for (k, p), (_, p_ref) in zip(mod.named_parameters(), ref.named_parameters()):
        x2 = x.detach().requires_grad_(False)
        (dp,) = torch.autograd.grad(mod(x2).sum(), p)
        (dp_ref,) = torch.autograd.grad(ref(x2).sum(), p_ref)
        torch.testing.assert_close(dp, dp_ref, rtol=1e-5, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")


def test_module_save_mask_attribute(dev: str) -> None:
    m = A.ReLU(backend="triton")
    m.save_mask = True
    x = torch.randn(4, 64, device=dev, requires_grad=True)
    assert _saved_bytes(lambda: m(x)) == x.numel() // 8
    y = m(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (x > 0).float())


def test_module_under_autocast_keeps_dtypes(dev: str) -> None:
    torch.manual_seed(0)
    swish = A.Swish(1.0, learnable=True, num_parameters=6, backend="triton")
    net = nn.Sequential(nn.Linear(8, 6), A.PReLU(6, backend="triton"), nn.Linear(6, 6), swish).to(dev)
    x = torch.randn(5, 8, device=dev)
    with torch.autocast(dev, dtype=torch.bfloat16):
        h = net[0](x)
        assert h.dtype == torch.bfloat16
        y = net(x)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    for p in (net[1].weight, net[3].beta):
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()


# ----------------------------------------------------------------------------------------------------
# torch.compile
# ----------------------------------------------------------------------------------------------------


def _net(backend: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        A.PReLU(4, backend=backend),
        A.GELU(backend=backend),
        A.SwishChannelwise(4, backend=backend),
        A.RReLU(backend=backend),
        A.HeLU(backend=backend),
    ).eval()


def _out_and_grads(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    y = model(x)
    y.square().sum().backward()
    return y.detach(), [p.grad.clone() for p in model.parameters()]


def test_compile_traces_custom_ops_without_graph_breaks(dev: str) -> None:
    import torch._dynamo

    net = _net("triton").to(dev)
    x = torch.randn(2, 3, 8, 8, device=dev)
    explanation = torch._dynamo.explain(net)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    y, grads = _out_and_grads(net, x)
    y_c, grads_c = _out_and_grads(torch.compile(net, backend="aot_eager", fullgraph=True), x)
    torch.testing.assert_close(y_c, y, rtol=0, atol=0)
    for a, b in zip(grads_c, grads):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.slow
def test_compile_inductor(dev: str) -> None:
    """Inductor compiles the graph around the opaque custom ops (C++ on CPU, Triton on CUDA)."""
    net = _net("triton").to(dev)
    x = torch.randn(2, 3, 8, 8, device=dev)
    y, grads = _out_and_grads(net, x)
    y_c, grads_c = _out_and_grads(torch.compile(net, fullgraph=True), x)
    torch.testing.assert_close(y_c, y, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads_c, grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------------------------------


def test_use_fused_dispatch(monkeypatch: pytest.MonkeyPatch, has_triton: bool) -> None:
    cpu = torch.zeros(2)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert not selfcheck.use_fused(cpu, "torch", "prelu")
    assert not selfcheck.use_fused(cpu, "auto", "prelu")  # the reference off the GPU
    assert not selfcheck.use_fused(cpu, "triton", "identity")
    if has_triton:
        with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
            selfcheck.use_fused(cpu, "triton", "prelu")
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        assert selfcheck.use_fused(cpu, "triton", "prelu")
        assert not selfcheck.use_fused(cpu, "auto", "prelu")  # auto never picks the interpreter
        with pytest.raises(TypeError, match="backend='torch'"):
            selfcheck.use_fused(cpu.double(), "triton", "gelu")
    with pytest.raises(ValueError, match="no fused kernel"):
        selfcheck.use_fused(cpu, "triton", "tanh")
    with pytest.raises(ValueError, match="backend must be one of"):
        fused.check_backend("cuda")


def test_use_fused_without_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fused, "triton_available", lambda: False)
    assert not selfcheck.use_fused(torch.zeros(2), "auto", "relu")
    with pytest.raises(RuntimeError, match="pip install triton"):
        selfcheck.use_fused(torch.zeros(2), "triton", "relu")


def test_fused_call_on_cpu_without_interpreter_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="CUDA tensor"):
        fused.relu(torch.randn(4))


@pytest.mark.triton
def test_module_triton_backend_on_cpu_without_interpreter_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="backend='auto'"):
        A.PReLU(3, backend="triton")(torch.randn(2, 3))


def test_import_rectlab_does_not_import_triton() -> None:
    code = "import sys, rectlab, rectlab.activations.fused; print('triton' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------------------------------
# GPU: realistic shapes (skipped without CUDA)
# ----------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.triton
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16), ids=str)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_gpu_elementwise_large(name: str, dtype: torch.dtype) -> None:
    fused_fn, ref_fn, exact = ELEMENTWISE[name]
    x = (torch.randn(32, 64, 56, 56, device="cuda") * 3).to(dtype).to(memory_format=torch.channels_last)
    _check(fused_fn, ref_fn, x, exact=exact)


@pytest.mark.gpu
@pytest.mark.triton
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16), ids=str)
@pytest.mark.parametrize("layout", ("nchw", "channels_last", "nlc", "shared"))
def test_gpu_prelu_swish_large(layout: str, dtype: torch.dtype) -> None:
    if layout == "nlc":
        x, dim, channels = torch.randn(16, 1024, 768, device="cuda"), -1, 768
    else:
        x, dim, channels = torch.randn(64, 64, 56, 56, device="cuda"), 1, 64
        if layout == "channels_last":
            x = x.to(memory_format=torch.channels_last)
        if layout == "shared":
            channels = 1
    x = x.to(dtype)
    for op in CHANNEL_OPS:
        value = _channel_param(op, channels, "cuda")
        fast, spec = _with_param(op, getattr(fused, op.ident), dim), _with_param(op, op.reference, dim)
        _check(fast, spec, x, (value,), exact=op.piecewise_linear)


@pytest.mark.gpu
@pytest.mark.triton
def test_gpu_compile_inductor_resnet_block() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), A.PReLU(32), nn.Conv2d(32, 32, 3, padding=1), A.Mish()
    ).cuda()
    net = net.to(memory_format=torch.channels_last)
    x = torch.randn(64, 16, 32, 32, device="cuda").to(memory_format=torch.channels_last)
    y, grads = _out_and_grads(net, x)
    y_c, grads_c = _out_and_grads(torch.compile(net, fullgraph=True), x)
    torch.testing.assert_close(y_c, y, rtol=1e-4, atol=1e-4)
    for a, b in zip(grads_c, grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
@pytest.mark.triton
def test_gpu_rrelu_large_is_uniform() -> None:
    x = -torch.rand(1 << 24, device="cuda") - 0.5
    y = fused.rrelu(x, 0.1, 0.3, training=True)
    slope = (y / x).double()
    assert slope.min().item() >= 0.1 and slope.max().item() <= 0.3
    assert abs(slope.mean().item() - 0.2) < 1e-3 and abs(slope.var().item() - 0.2**2 / 12) < 1e-4
    assert math.isclose(float((slope < 0.15).double().mean()), 0.25, abs_tol=2e-3)
