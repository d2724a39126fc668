"""Self-checking dispatch: a fused kernel is checked against the plain-torch spec before ``backend="auto"`` uses it.

`use_fused` decides, per call, whether a module runs its fused kernel. rectlab's Triton kernels are
tested in CI in Triton's CPU interpreter, but a GPU, driver, Triton or torch version that CI never saw can
still miscompile or reject them. So the first time ``backend="auto"`` would run a fused op in a process on a
given ``(device, dtype, layout family)``, `kernel_ok` runs that op's kernels once on small tensors (a few
thousand elements, with the kinks 0, -0, +-0.1, +-0.5 and saturated tails among them), in every case the op
table gives for it (`rectlab.activations.ops.cases`), and compares the output and every gradient with
the op's reference at the tests' tolerances (`compare`). If a kernel fails to compile, raises, or mismatches, one
`KernelSelfCheckWarning` names the op, the device, the torch and Triton versions and how to report
it, and ``backend="auto"`` runs the reference for that op on that device for the rest of the process.
Results are cached per process; nothing is written to disk (Triton caches its compiled kernels itself).

Only ``backend="auto"`` is checked: ``backend="triton"`` (or ``RECTLAB_BACKEND=triton``) runs the kernels
as asked, ``backend="torch"`` never runs them. ``rectlab env`` shows the state per op; ``rectlab env
--check`` runs every check now.

``RECTLAB_BACKEND=torch|triton|auto`` (read at each call) replaces ``backend="auto"`` for a whole program
without touching its code: ``torch`` runs the reference everywhere ``auto`` was asked for, ``triton`` the
kernels (no self-check; an error where they cannot run), ``auto`` (or unset) the default. An explicit
``backend="torch"`` or ``"triton"`` on a module or function is never overridden.
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import InputError, InputTypeError, UnavailableError
from ..kernels import interpret_requested
from . import fused
from . import ops as op_table
from .backend import BACKEND_ENV, backend_from_env  # re-exported: the dispatch reads them
from .cpu import CPU_OPS, DTYPES

__all__ = [
    "BACKEND_ENV",
    "EDGES",
    "LAYOUTS",
    "CheckResult",
    "KernelSelfCheckWarning",
    "backend_from_env",
    "check",
    "check_all",
    "compare",
    "explain",
    "kernel_ok",
    "layout_family",
    "ops",
    "reset",
    "results",
    "use_fused",
]


_FUSED = frozenset(op_table.names(triton=True))
"""The ops with a fused kernel."""

LAYOUTS = ("contiguous", "channels_last")
"""Layout families checked separately: per-channel kernels tile NCHW and channels_last memory differently."""


class KernelSelfCheckWarning(RuntimeWarning):
    """A fused kernel failed its self-check; ``backend="auto"`` uses the plain-torch reference for that op."""


def use_fused(x: Tensor, backend: str, op: str) -> bool:
    """Decide, for one call, whether the fused kernel runs.

    Args:
        x: the input tensor.
        backend: ``"torch"`` never; ``"auto"`` when ``x`` is a CUDA tensor of a supported dtype, Triton is
            installed and the op's kernels passed their self-check for this device, dtype and layout (run
            on first use, `kernel_ok`; else the plain-torch reference runs); ``"triton"`` always, on
            CUDA tensors or, with ``TRITON_INTERPRET=1``, on CPU tensors through Triton's interpreter.
            ``RECTLAB_BACKEND`` (read at each call) replaces ``"auto"``.
        op: the module's op (``"prelu"``, ``"gelu"`` ...); the op table says which have a fused kernel.

    Raises:
        RuntimeError / TypeError: for ``backend="triton"`` when the kernel cannot run; the message says
            what is missing and how to fix it. ValueError: an invalid ``RECTLAB_BACKEND``.
    """
    backend = backend_from_env(backend)
    if backend == "torch" or op == "identity":  # the identity never needs a kernel
        return False
    if op not in _FUSED:
        if backend == "triton":
            raise InputError(f"no fused kernel for {op!r}; use backend='auto' or 'torch'")
        return False
    if backend == "auto":
        return _kernel_device(x) and x.dtype in fused.DTYPES and fused.triton_available() and kernel_ok(op, x)
    fused.check_backend(backend)
    if not fused.triton_available():
        raise UnavailableError(
            f"backend='triton' for {op!r} needs the triton package, which is not installed: install it "
            "(pip install triton, Linux with a CUDA GPU) or use backend='auto' / 'torch'"
        )
    if x.dtype not in fused.DTYPES:
        raise InputTypeError(
            f"the fused {op!r} kernel takes float32, bfloat16 or float16 tensors, got {x.dtype}; "
            "use backend='torch' for other dtypes (e.g. float64 for gradcheck), or backend='auto'"
        )
    if x.is_cuda or interpret_requested():
        return True
    raise UnavailableError(
        f"backend='triton' for {op!r} got a {x.device.type} tensor, but Triton kernels run on CUDA GPUs: move "
        "the model and data to a GPU, use backend='auto' (the PyTorch reference off the GPU) or 'torch', or set "
        "TRITON_INTERPRET=1 to run the kernels in Triton's CPU interpreter (slow; for tests)"
    )


def _kernel_device(x: Tensor) -> bool:
    """Where ``backend="auto"`` considers the kernels: CUDA tensors (tests widen it to the interpreter)."""
    return x.is_cuda


def layout_family(x: Tensor) -> str:
    """``"channels_last"`` for a 4-D tensor in channels_last memory order, else ``"contiguous"`` (the kernels
    see every other input as row-major memory, copying strided views first)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    return "contiguous"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one self-check.

    Attributes:
        op: the module op name (``"prelu"``, ``"gelu"`` ...).
        device: e.g. ``"cuda:0"``.
        dtype: e.g. ``"torch.bfloat16"``.
        layout: one of `LAYOUTS`.
        passed: every case matched the reference.
        problems: what went wrong, one line each (empty when passed).
        seconds: wall time of the check, Triton's compilation of the kernels included.
    """

    op: str
    device: str
    dtype: str
    layout: str
    passed: bool
    problems: tuple[str, ...] = field(default=())
    seconds: float = 0.0


# ----------------------------------------------------------------------------------------------------
# Comparing with the reference
# ----------------------------------------------------------------------------------------------------


def _value_and_grads(fn: Callable, x: Tensor, params: Sequence[Tensor], g: Tensor) -> tuple[Tensor, tuple]:
    x = x.detach().clone().requires_grad_(True)
    ps = [p.detach().clone().requires_grad_(p.requires_grad) for p in params]
    y = fn(x, *ps)
    wrt = [x] + [p for p in ps if p.requires_grad]
    return y.detach(), torch.autograd.grad(y, wrt, g)


def compare(
    fused_fn: Callable,
    ref_fn: Callable,
    x: Tensor,
    params: Sequence[Tensor] = (),
    g: Tensor | None = None,
    exact: bool = False,
) -> list[str]:
    """Compare a fused op with its reference: output, input gradient and parameter gradients.

    Tolerances (the tests' too): float32 to 1e-5 (the output exactly when ``exact``, for piecewise-linear ops);
    bfloat16 / float16: the fused error to a float32 reference at most 2x PyTorch's own low-precision error
    plus 1e-6, output and every gradient. Outputs must keep the input's dtype and shape, parameter
    gradients the parameter's dtype.

    Args:
        fused_fn, ref_fn: ``fn(x, *params) -> y``.
        x: the input (its dtype and layout are the ones under test).
        params: parameters; those with ``requires_grad`` get a gradient compared too.
        g: the output gradient (default: seeded normal values).
        exact: the float32 output must match exactly.

    Returns:
        One line per mismatch; empty when everything matches.
    """
    if g is None:
        g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(x.dtype).to(x.device)
    names = ["y", "dx"] + [f"d{i}" for i, p in enumerate(params) if p.requires_grad]
    y, grads = _value_and_grads(fused_fn, x, params, g)
    problems = []
    if y.dtype != x.dtype or y.shape != x.shape or grads[0].dtype != x.dtype:
        problems.append(f"y / dx: {y.dtype} / {grads[0].dtype} {tuple(y.shape)} for a {x.dtype} {tuple(x.shape)} input")
    learnable = [p for p in params if p.requires_grad]
    for p, dp in zip(learnable, grads[1:]):
        if dp.dtype != p.dtype:
            problems.append(f"parameter gradient in {dp.dtype}, parameter in {p.dtype}")
    if x.numel() == 0 or problems:
        return problems
    if x.dtype == torch.float32:
        y_ref, grads_ref = _value_and_grads(ref_fn, x, params, g)
        for name, a, b in zip(names, (y, *grads), (y_ref, *grads_ref)):
            tol = 0.0 if exact and name == "y" else 1e-5
            if not torch.allclose(a.float(), b.float(), rtol=tol, atol=tol, equal_nan=True):
                err = (a.float() - b.float()).abs().max().item()
                problems.append(f"{name}: max abs error {err:.3g} to the float32 reference (tolerance {tol:g})")
        return problems
    y32, grads32 = _value_and_grads(ref_fn, x.float(), [p.float() for p in params], g.float())
    y_lo, grads_lo = _value_and_grads(ref_fn, x, [p.to(x.dtype) for p in params], g)
    for name, ours, theirs, ref in zip(names, (y, *grads), (y_lo, *grads_lo), (y32, *grads32)):
        err = (ours.float() - ref).abs().max().item()
        err_torch = (theirs.float() - ref).abs().max().item()
        if not err <= 2 * err_torch + 1e-6:  # written so that NaN fails
            problems.append(f"{name}: fused error {err:.3g} > 2 x PyTorch's {err_torch:.3g} + 1e-6 ({x.dtype})")
    return problems


# ----------------------------------------------------------------------------------------------------
# The cases of each op: every kernel the module can launch, on small tensors
# ----------------------------------------------------------------------------------------------------

EDGES = (0.0, -0.0, 0.5, -0.5, -0.1, 0.1, 1e-3, -1e-3, 6.0, -6.0, 30.0, -30.0)
"""Values every checked tensor starts with (in memory order): 0 and -0, the kinks of SmeLU (beta=0.5) and HeLU
(alpha=0.1), points beside them, and saturated tails."""

_SHAPES = ((2, 16, 8, 8), (2, 16, 4, 4))
"""NCHW shapes: H*W = 64 and 16 reach both tilings of the per-channel backward (planes, rows); 2048 and 512
elements, multiples of 16 like most real tensors (Triton specializes on that)."""


@dataclass(frozen=True)
class _Case:
    fused: Callable
    ref: Callable
    params: tuple[tuple[str, float, bool], ...] = ()  # (form "channel" | "shared", base value, learnable)
    exact: bool = False
    shapes: tuple[tuple[int, ...], ...] = _SHAPES[:1]


def _cases(op: str) -> list[_Case]:
    """The cases of ``op`` in the op table, run through ``fused.<op>`` and compared with the op's reference
    (RReLU's training mode: `_check_rrelu_training`)."""
    if op not in _FUSED:
        raise InputError(f"no self-check for {op!r}; checked ops: {', '.join(ops())}")
    row = op_table.get(op)
    fast = getattr(fused, row.ident)
    out = []
    for case in op_table.cases(row):
        params = tuple((form, value, learnable) for _, form, value, learnable in case.tensors)
        per_channel = any(form == "channel" for form, _, _ in params)
        shapes = _SHAPES if per_channel else _SHAPES[:1]
        out.append(_Case(case.bind(fast), case.spec(), params, row.piecewise_linear, shapes))
    return out


def ops() -> list[str]:
    """The op names that have fused kernels (and a self-check), in the op table's order."""
    return op_table.names(triton=True)


def _example(shape: tuple[int, ...], layout: str, dtype: torch.dtype, device: torch.device, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    if layout == "channels_last":
        n, c, h, w = shape
        x = torch.randn(n, h, w, c, generator=g) * 2
    else:
        x = torch.randn(*shape, generator=g) * 2
    x.view(-1)[: len(EDGES)] = torch.tensor(EDGES)  # the kinks, first in memory
    if layout == "channels_last":
        x = x.permute(0, 3, 1, 2)  # NCHW shape, NHWC memory
    return x.to(dtype).to(device)  # .to keeps the strides of dense tensors


def _param(kind: str, value: float, learnable: bool, channels: int, device: torch.device) -> Tensor:
    n = channels if kind == "channel" else 1
    p = value + 0.1 * torch.linspace(-1, 1, n)  # distinct per channel, so that a wrong channel index shows
    return p.to(device).requires_grad_(learnable)


def _run_case(case: _Case, layout: str, dtype: torch.dtype, device: torch.device) -> list[str]:
    problems = []
    for i, shape in enumerate(case.shapes):
        x = _example(shape, layout, dtype, device, seed=i)
        params = [_param(kind, v, learn, x.shape[1], device) for kind, v, learn in case.params]
        for p in compare(case.fused, case.ref, x, params, exact=case.exact):
            problems.append(f"{tuple(shape)}: {p}")
    return problems


def _check_rrelu_training(layout: str, dtype: torch.dtype, device: torch.device) -> list[str]:
    """RReLU's training slopes are random (not torch's draws): check y, dx against the slopes y / x."""
    lower, upper = 0.1, 0.3
    rel = {torch.float32: 0.0, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}[dtype]
    problems = []
    for save_mask in (False, True):
        x = _example(_SHAPES[0], layout, dtype, device, seed=0).requires_grad_(True)
        gen = torch.Generator(device=device).manual_seed(0)
        y = fused.rrelu(x, lower, upper, training=True, save_mask=save_mask, generator=gen)
        g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype).to(device)
        (dx,) = torch.autograd.grad(y, x, g)
        xs, ys, gs, dxs = (t.detach().float().cpu() for t in (x, y, g, dx))
        pos = xs >= 0
        slope = ys[~pos] / xs[~pos]
        what = "mask" if save_mask else "x"
        if not (torch.equal(ys[pos], xs[pos]) and torch.equal(dxs[pos], gs[pos])):
            problems.append(f"training ({what} saved): y or dx differs from x / g where x >= 0")
        if not (slope.min() >= lower * (1 - rel) - 1e-7 and slope.max() <= upper * (1 + rel) + 1e-7):
            problems.append(f"training ({what} saved): slopes outside [{lower}, {upper}]")
        if not torch.allclose(dxs[~pos], gs[~pos] * slope, rtol=4 * max(rel, 1e-6), atol=1e-6):
            problems.append(f"training ({what} saved): the backward's slopes are not the forward's")
    return problems


def check(op: str, device: str | torch.device, dtype: torch.dtype, layout: str = "contiguous") -> CheckResult:
    """Run the self-check of one op now (uncached): every case of the op on small tensors of that dtype and layout.

    Args:
        op: a module op name with a fused kernel (see `ops`).
        device: where the kernels run: a CUDA device, or ``"cpu"`` under ``TRITON_INTERPRET=1``.
        dtype: float32, bfloat16 or float16.
        layout: one of `LAYOUTS`.

    Returns:
        A `CheckResult`; an exception raised by a kernel (compilation included) is a failed check.
    """
    device = torch.device(device)
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    t0 = time.perf_counter()
    problems: list[str] = []
    try:
        # The first call may come under no_grad / inference_mode / autocast (evaluation, mixed precision):
        # the check needs autograd and full control of dtypes.
        with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device.type, enabled=False):
            for case in _cases(op):
                problems += _run_case(case, layout, dtype, device)
            if op_table.get(op).random:
                problems += _check_rrelu_training(layout, dtype, device)
    except Exception as e:  # compilation errors, launch failures, anything: the kernel is not usable here
        first = (str(e).strip().splitlines() or [""])[0][:300]
        problems.append(f"raised {type(e).__name__}: {first}")
    return CheckResult(op, str(device), str(dtype), layout, not problems, tuple(problems), time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------------
# The per-process cache behind backend="auto"
# ----------------------------------------------------------------------------------------------------

_RESULTS: dict[tuple[str, str, torch.dtype, str], CheckResult] = {}
_FAILED: dict[tuple[str, str], CheckResult] = {}
"""(op, device) -> the first failed check: that op runs the reference on that device from then on."""


def kernel_ok(op: str, x: Tensor) -> bool:
    """May ``backend="auto"`` run the fused kernel of ``op`` on ``x``? Runs the self-check on first use.

    Cached per process and per ``(op, device, dtype, layout family)``; a failure disables the op on that
    device (all dtypes and layouts) and warns once. Inside CUDA graph capture an op not yet checked runs the
    reference (a check cannot run there); under ``torch.compile`` the answer is taken at trace time.
    """
    device, family = str(x.device), layout_family(x)
    if _compiling():
        return _passed(op, device, x.dtype, family)
    known = (op, device, x.dtype, family) in _RESULTS or (op, device) in _FAILED
    if not known and x.is_cuda and torch.cuda.is_current_stream_capturing():
        return False
    return _passed(op, device, x.dtype, family)


def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    if is_compiling is None:  # pragma: no cover - torch 2.4 has it; kept for older minor builds
        return bool(torch._dynamo.is_compiling())
    return is_compiling()


def _assume_constant(fn: Callable) -> Callable:
    # torch.compile calls `fn` once at trace time and bakes its answer into the graph (no graph break). This
    # sets the mark torch.compiler.assume_constant_result sets, without importing torch._dynamo (and with it
    # Triton) when rectlab is imported.
    fn._dynamo_marked_constant = True  # type: ignore[attr-defined]
    return fn


@_assume_constant
def _passed(op: str, device: str, dtype: torch.dtype, family: str) -> bool:
    if (op, device) in _FAILED:
        return False
    key = (op, device, dtype, family)
    result = _RESULTS.get(key)
    if result is None:
        result = _RESULTS[key] = check(op, device, dtype, family)
        if not result.passed:
            _FAILED[(op, device)] = result
            _warn(result)
    return result.passed


def _warn(result: CheckResult) -> None:
    device = torch.device(result.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    more = len(result.problems) - 3
    detail = "; ".join(result.problems[:3]) + (f"; and {more} more" if more > 0 else "")
    warnings.warn(
        f"rectlab: the fused Triton kernel of {result.op!r} failed its self-check on {result.device} ({name}), "
        f"{result.dtype}, {result.layout} (torch {torch.__version__}, triton {_triton_version()}): {detail}. "
        f"backend='auto' runs the plain-torch reference for {result.op!r} on this device for the rest of this "
        "process: results stay correct, only speed is lost. Please report it to rectlab's issue tracker with "
        f"this message and the output of `rectlab env --check`. {BACKEND_ENV}=torch silences this; "
        "backend='triton' forces the kernel.",
        KernelSelfCheckWarning,
        stacklevel=5,
    )


def _triton_version() -> str:
    try:
        import triton  # optional, slow to import: only for its version

        return triton.__version__
    except ImportError:  # pragma: no cover - a check only runs with Triton
        return "not installed"


def check_all(
    device: str | torch.device,
    dtypes: Sequence[torch.dtype] = (torch.float32, torch.bfloat16),
    layouts: Sequence[str] = LAYOUTS,
    op_names: Sequence[str] | None = None,
) -> list[CheckResult]:
    """Self-check every op (or ``op_names``) now on ``device`` for each dtype and layout, recording the results
    in this process's cache as first use would (a failure warns once and disables the op on that device).

    Returns:
        The results, one per (op, dtype, layout), in that order.
    """
    device = str(torch.device(device))
    out = []
    for op in op_names or ops():
        for dtype in dtypes:
            for layout in layouts:
                _passed(op, device, dtype, layout)
                out.append(_RESULTS.get((op, device, dtype, layout)) or _FAILED[(op, device)])
    return out


def explain(op: str, device: str | torch.device) -> tuple[str, str]:
    """Which implementation ``backend="auto"`` runs for ``op`` on ``device`` in this process, and why.

    Returns:
        ``(backend, reason)``: ``backend`` is ``"triton"`` (the fused kernel), ``"cpu"`` (rectlab's CPU function,
        `rectlab.activations.cpu`) or ``"torch"`` (the plain-torch reference).
    """
    device = torch.device(device)
    try:
        env = backend_from_env("auto")
    except ValueError as e:
        return "error", str(e)
    if env == "torch":
        return "torch", f"{BACKEND_ENV}=torch"
    if device.type != "cuda":
        if env == "triton":
            return "triton", f"{BACKEND_ENV}=triton (CPU tensors need TRITON_INTERPRET=1, else an error)"
        if op in CPU_OPS:
            dtypes = "/".join(str(d).replace("torch.", "") for d in DTYPES)
            return "cpu", (
                f"rectlab's CPU function (one pass forward, one backward) for {dtypes} tensors; the "
                f"plain-torch reference under torch.compile, tracing and vmap"
            )
        return "torch", "the plain-torch reference: PyTorch's own CPU op is already one pass"
    if not fused.triton_available():
        return "torch", "triton is not installed (pip install triton)"
    if env == "triton":
        return "triton", f"{BACKEND_ENV}=triton: the kernels, without self-check"
    failed = _FAILED.get((op, str(device)))
    if failed is not None:
        return "torch", f"self-check failed ({failed.dtype}, {failed.layout}): {failed.problems[0]}"
    done = [r for r in _RESULTS.values() if r.op == op and r.device == str(device)]
    if done:
        what = ", ".join(f"{r.dtype.replace('torch.', '')} {r.layout}" for r in done)
        return "triton", f"self-check passed ({what})"
    return "triton", "the kernel, after its self-check on first use (`rectlab env --check` runs it now)"


def results() -> list[CheckResult]:
    """Every self-check this process has run (through ``backend="auto"`` or `kernel_ok`)."""
    return list(_RESULTS.values())


def reset() -> None:
    """Forget every self-check result of this process (for tests, and after changing Triton settings)."""
    _RESULTS.clear()
    _FAILED.clear()
