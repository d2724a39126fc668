"""The self-checking dispatch of backend="auto" (rectlab.activations.selfcheck) and RECTLAB_BACKEND.

Without a GPU, backend="auto" never picks the kernels; these tests widen it to CPU tensors under Triton's
interpreter (``selfcheck._kernel_device``) so that the whole path runs: first use -> self-check -> kernel or
reference, with a broken kernel monkeypatched in where a test needs one.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from rectlab import activations as A
from rectlab.activations import functional as AF
from rectlab.activations import fused, ops, selfcheck


@pytest.fixture(autouse=True)
def fresh_cache():
    selfcheck.reset()
    yield
    selfcheck.reset()


@pytest.fixture
def auto_on_cpu(monkeypatch: pytest.MonkeyPatch, has_triton: bool) -> None:
    """backend="auto" considers the kernels for CPU tensors, which run in Triton's interpreter."""
    if not has_triton:
        pytest.skip("triton is not installed")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.delenv(selfcheck.BACKEND_ENV, raising=False)
    monkeypatch.setattr(selfcheck, "_kernel_device", lambda x: True)


def _kernel_module(family: str):
    from rectlab import kernels

    return kernels.load(family)  # built for the current TRITON_INTERPRET: a stable object to monkeypatch


def _self_check_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, selfcheck.KernelSelfCheckWarning)]


def _prelu_step(module: torch.nn.Module, x: torch.Tensor, g: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    module.zero_grad()
    y = module(x)
    y.backward(g)
    return y.detach(), x.grad, module.weight.grad.clone()


def _prelu_reference(weight: torch.Tensor, x: torch.Tensor, g: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    w = weight.detach().clone().requires_grad_(True)
    y = AF.prelu(x, w, 1)
    y.backward(g)
    return y.detach(), x.grad, w.grad


# ----------------------------------------------------------------------------------------------------
# The check itself
# ----------------------------------------------------------------------------------------------------


def _combos(op: str) -> list[tuple[torch.dtype, str]]:
    """Both dtype/layout combinations for the ops with a tensor parameter (their tiling depends on the layout)
    and the random ones, one for the others, alternating between ops so that both dtypes and both layouts are
    covered (suite time)."""
    both = [(torch.float32, "contiguous"), (torch.bfloat16, "channels_last")]
    row = ops.get(op)
    return both if row.tensor_params or row.random else [both[selfcheck.ops().index(op) % 2]]


@pytest.mark.triton
@pytest.mark.slow
@pytest.mark.parametrize("op", selfcheck.ops())
def test_self_check_passes_for_every_op_in_the_interpreter(monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    for dtype, layout in _combos(op):
        result = selfcheck.check(op, "cpu", dtype, layout)
        assert result.passed, result.problems
        assert result.op == op and result.layout == layout and result.seconds > 0


@pytest.mark.triton
def test_self_check_float16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    for op in ("prelu", "gelu"):
        assert selfcheck.check(op, "cpu", torch.float16, "channels_last").passed


def test_layout_family() -> None:
    x = torch.empty(2, 3, 4, 5)
    assert selfcheck.layout_family(x) == "contiguous"
    assert selfcheck.layout_family(x.to(memory_format=torch.channels_last)) == "channels_last"
    assert selfcheck.layout_family(torch.empty(2, 3, 1, 1).to(memory_format=torch.channels_last)) == "contiguous"
    assert selfcheck.layout_family(torch.empty(4, 5)) == "contiguous"
    with pytest.raises(ValueError, match="layout must be one of"):
        selfcheck.check("relu", "cpu", torch.float32, "nhwc")
    with pytest.raises(ValueError, match="checked ops"):
        selfcheck._cases("tanh")


def test_compare_catches_a_wrong_gradient_and_a_wrong_dtype() -> None:
    x = torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(0))
    w = torch.full((3,), 0.25, requires_grad=True)
    assert selfcheck.compare(AF.prelu, AF.prelu, x, (w,), exact=True) == []

    class DoubleGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t.clone()

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    problems = selfcheck.compare(lambda x, w: AF.prelu(DoubleGrad.apply(x), w), AF.prelu, x, (w,))
    assert len(problems) == 1 and problems[0].startswith("dx:")
    problems = selfcheck.compare(lambda x: AF.relu(x.to(torch.bfloat16)).float(), AF.relu, x.to(torch.bfloat16))
    assert problems and "float32" in problems[0]
    nan = selfcheck.compare(lambda x: AF.relu(x) * float("nan"), AF.relu, x.to(torch.bfloat16))
    assert nan and nan[0].startswith("y:")


# ----------------------------------------------------------------------------------------------------
# Dispatch: first use checks, a failure falls back with one warning
# ----------------------------------------------------------------------------------------------------


def test_auto_runs_the_kernel_after_a_passed_check(auto_on_cpu) -> None:
    x = torch.randn(2, 16, 8, 8)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert selfcheck.use_fused(x, "auto", "gelu")
        assert selfcheck.use_fused(x, "auto", "gelu")  # cached: one check
    assert not _self_check_warnings(record)
    (result,) = selfcheck.results()
    assert (result.op, result.device, result.dtype, result.layout, result.passed) == (
        "gelu", "cpu", "torch.float32", "contiguous", True
    )  # fmt: skip
    assert selfcheck.use_fused(x.to(memory_format=torch.channels_last), "auto", "gelu")
    assert len(selfcheck.results()) == 2  # one check per layout family
    assert selfcheck.explain("gelu", "cpu")[0] == "torch"  # explain() speaks of CUDA devices only


@pytest.mark.parametrize("fault", ["raises", "wrong-forward", "wrong-weight-gradient"])
def test_a_broken_kernel_falls_back_to_the_reference(auto_on_cpu, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    pk = _kernel_module("channel")  # PReLU's kernels (and Swish's)
    forward, backward = pk.forward, pk.backward
    if fault == "raises":

        def broken_forward(*args, **kwargs):
            raise RuntimeError("PassManager::run failed (simulated compiler crash)")

        monkeypatch.setattr(pk, "forward", broken_forward)
    elif fault == "wrong-forward":

        def wrong_forward(*args, **kwargs):
            y, mask = forward(*args, **kwargs)
            return y * 1.001, mask

        monkeypatch.setattr(pk, "forward", wrong_forward)
    else:

        def wrong_backward(*args, **kwargs):
            dx, dw = backward(*args, **kwargs)
            return dx, None if dw is None else dw + 0.01

        monkeypatch.setattr(pk, "backward", wrong_backward)

    torch.manual_seed(0)
    module = A.PReLU(16)  # backend="auto"
    module.weight.data += torch.linspace(-0.1, 0.1, 16)
    x = torch.randn(4, 16, 6, 6)
    g = torch.randn(4, 16, 6, 6)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        first = _prelu_step(module, x, g)
        second = _prelu_step(module, x, g)
        assert not selfcheck.use_fused(x.to(torch.bfloat16), "auto", "prelu")  # disabled for every dtype
    messages = _self_check_warnings(record)
    assert len(messages) == 1, messages
    expected = {"raises": "raised RuntimeError: PassManager::run failed", "wrong-forward": "y: max abs error",
                "wrong-weight-gradient": "d0: max abs error"}[fault]  # fmt: skip
    assert expected in messages[0]
    for needle in ("'prelu'", "cpu", "torch.float32", f"torch {torch.__version__}", "triton ", "rectlab env --check",
                   "RECTLAB_BACKEND=torch"):  # fmt: skip
        assert needle in messages[0], needle
    reference = _prelu_reference(module.weight, x, g)
    for got in (first, second):
        for a, b in zip(got, reference):
            torch.testing.assert_close(a, b, rtol=0, atol=0)  # the reference itself ran
    assert selfcheck.use_fused(x, "auto", "relu")  # other ops keep their kernels
    backend, why = selfcheck.explain("prelu", "cpu")
    assert backend == "cpu"  # backend="auto" on CPU tensors: rectlab's CPU function, never the kernel
    assert not selfcheck._FAILED.get(("relu", "cpu"))
    # backend="triton" is explicit: it runs the kernel (here the broken one) as asked
    assert selfcheck.use_fused(x, "triton", "prelu")


def test_failed_check_explained_for_a_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """explain() on a CUDA device, from recorded results (no GPU needed)."""
    monkeypatch.delenv(selfcheck.BACKEND_ENV, raising=False)
    monkeypatch.setattr(fused, "triton_available", lambda: True)
    assert selfcheck.explain("gelu", "cuda:0") == ("triton", selfcheck.explain("gelu", "cuda:0")[1])
    assert "first use" in selfcheck.explain("gelu", "cuda:0")[1]
    ok = selfcheck.CheckResult("gelu", "cuda:0", "torch.bfloat16", "channels_last", True, (), 0.01)
    bad = selfcheck.CheckResult("prelu", "cuda:0", "torch.float32", "contiguous", False, ("dx: max abs error 1",), 0.1)
    monkeypatch.setitem(selfcheck._RESULTS, ("gelu", "cuda:0", torch.bfloat16, "channels_last"), ok)
    monkeypatch.setitem(selfcheck._FAILED, ("prelu", "cuda:0"), bad)
    assert selfcheck.explain("gelu", "cuda:0") == ("triton", "self-check passed (bfloat16 channels_last)")
    assert selfcheck.explain("prelu", "cuda:0") == ("torch", "self-check failed (torch.float32, contiguous): "
                                                             "dx: max abs error 1")  # fmt: skip
    monkeypatch.setenv(selfcheck.BACKEND_ENV, "triton")
    assert selfcheck.explain("prelu", "cuda:0")[0] == "triton"
    monkeypatch.setattr(fused, "triton_available", lambda: False)
    monkeypatch.setenv(selfcheck.BACKEND_ENV, "auto")
    assert selfcheck.explain("prelu", "cuda:0") == ("torch", "triton is not installed (pip install triton)")


def test_auto_under_torch_compile_checks_at_trace_time_without_graph_breaks(auto_on_cpu) -> None:
    import torch._dynamo

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), A.PReLU(16), A.GELU()).eval()
    x = torch.randn(2, 3, 10, 10)
    eager = net(x)
    assert {r.op for r in selfcheck.results()} == {"prelu", "gelu"}
    selfcheck.reset()
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(net)(x)
    assert explanation.graph_break_count == 0
    assert {r.op for r in selfcheck.results()} == {"prelu", "gelu"}  # checked while tracing
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), eager, rtol=0, atol=0)
    torch._dynamo.reset()


# ----------------------------------------------------------------------------------------------------
# RECTLAB_BACKEND
# ----------------------------------------------------------------------------------------------------


def test_backend_env_replaces_auto_at_call_time(auto_on_cpu, monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(2, 16, 8, 8)
    monkeypatch.setenv(selfcheck.BACKEND_ENV, "torch")
    assert not selfcheck.use_fused(x, "auto", "gelu")
    assert selfcheck.use_fused(x, "triton", "gelu")  # an explicit backend is never overridden
    assert selfcheck.results() == []
    monkeypatch.setenv(selfcheck.BACKEND_ENV, " Triton ")
    assert selfcheck.use_fused(x, "auto", "gelu") and selfcheck.results() == []  # forced: no self-check
    monkeypatch.setenv(selfcheck.BACKEND_ENV, "auto")
    assert selfcheck.use_fused(x, "auto", "gelu") and len(selfcheck.results()) == 1
    assert not selfcheck.use_fused(x, "torch", "gelu")
    monkeypatch.setenv(selfcheck.BACKEND_ENV, "cuda")
    with pytest.raises(ValueError, match="RECTLAB_BACKEND='cuda' is not valid: use torch, triton or auto"):
        selfcheck.use_fused(x, "auto", "gelu")


def test_backend_env_torch_gives_the_reference_in_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(selfcheck.BACKEND_ENV, "torch")
    monkeypatch.setattr(selfcheck, "_kernel_device", lambda x: True)  # even where auto would pick the kernels
    module = A.PReLU(4)
    x = torch.randn(3, 4, 5)
    torch.testing.assert_close(module(x), AF.prelu(x, module.weight, 1), rtol=0, atol=0)
    assert selfcheck.results() == []


@pytest.mark.triton
def test_backend_env_triton_on_cpu_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(selfcheck.BACKEND_ENV, "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        A.GELU()(torch.randn(3))


# ----------------------------------------------------------------------------------------------------
# rectlab env
# ----------------------------------------------------------------------------------------------------


def test_env_shows_backends_and_checks_in_the_interpreter(
    monkeypatch: pytest.MonkeyPatch, capsys, has_triton: bool, cuda: bool
) -> None:
    from rectlab.cli.main import main

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv(selfcheck.BACKEND_ENV, "torch")
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "RECTLAB_BACKEND" in out and "prelu" in out and "RECTLAB_BACKEND=torch" in out
    if not has_triton or cuda:
        return
    monkeypatch.delenv(selfcheck.BACKEND_ENV)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(selfcheck, "ops", lambda: ["relu", "smelu"])  # two ops are enough to see the table
    assert main(["env", "--check"]) == 0
    out = capsys.readouterr().out
    assert "self-check on cpu" in out and out.count("passed") == 8  # 2 ops x 2 dtypes x 2 layouts
