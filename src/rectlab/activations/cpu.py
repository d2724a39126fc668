"""Fast CPU paths: one ``torch.autograd.Function`` per activation whose plain-torch spec is slow on CPU.

On a CPU tensor, ``backend="auto"`` runs these instead of the spec (`rectlab.activations.functional`)
for the ops whose row of the op table (`rectlab.activations.ops`) has ``cpu``: PReLU, RReLU (training),
Swish, SmeLU, HeLU, GCU and Mish, each by the function of its name here. The other activations' specs already
*are* PyTorch's native CPU ops (``F.relu``, ``F.elu``, ``F.gelu``, ``F.silu`` ...), so they need nothing here.
`use_cpu` decides per call; nothing switches implementations globally.

Why they are faster (measured; see ``docs/activations.md``, "Speed on CPU"): on CPU a fresh output buffer
for a study-sized tensor can cost as much as a pass over it (page faults), and ``torch.where`` / boolean
masks run at a fraction of the speed of arithmetic ops. So each Function here

* computes its forward with few native passes (``_prelu_kernel``, ``relu``, ``hardsigmoid``, one ``exp``
  for Mish ...), never with ``torch.where`` or a boolean mask;
* saves what its backward needs, and no more, instead of an autograd graph of five elementwise ops;
* computes the input gradient and the parameter gradient in a short sequence of in-place ops on one
  output buffer, with the derivative written beside it.

The paths compute in the input's dtype (fp32, fp64 for gradcheck, bf16) like the spec does (Mish and
learnable Swish in fp32 for bf16 inputs), and return parameter gradients in the parameter's dtype (reduced in
fp32 for bf16). Their backward is ``once_differentiable``: for higher-order derivatives (``create_graph=True``) use
``backend="torch"``.

Not ``torch.compile``: inductor's CPU kernels of the spec are faster for SmeLU, GCU and learnable Swish
(about 1.5x per call at the study shapes) but cost seconds to tens of seconds of compilation per process
and shape family, need a C++ toolchain at run time, and are many times slower for ReLU-like backward
passes (HeLU, RReLU) on the CPU measured; ``torch.compile(model)`` remains available, and these paths step
aside under it so that inductor sees the spec.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..errors import InputError
from ..kernels import _layout
from . import functional as AF
from . import ops as op_table
from .backend import backend_from_env

__all__ = [
    "CPU_OPS",
    "DTYPES",
    "GCUFunction",
    "HeLUFunction",
    "MishFunction",
    "PReLUFunction",
    "RReLUFunction",
    "SmeLUFunction",
    "SwishFunction",
    "SwishRecomputeFunction",
    "gcu",
    "helu",
    "mish",
    "prelu",
    "rrelu",
    "smelu",
    "swish",
    "use_cpu",
]

CPU_OPS = frozenset(op_table.names(cpu=True))
"""The ops with a fast CPU path (from the op table); the others' specs are PyTorch's native ops already."""

DTYPES = (torch.float32, torch.float64, torch.bfloat16)
"""Input dtypes the CPU paths take (float16 stays on the spec: several CPU kernels lack it on torch 2.4)."""

_aten = torch.ops.aten
_prelu_kernel = _aten._prelu_kernel.default


# ----------------------------------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------------------------------


def _transformed(x: Tensor) -> bool:
    """True while ``x`` is traced or transformed: torch.compile / export (inductor fuses the spec, and a
    custom Function would only cut the graph), ``torch.jit.trace`` (ONNX), functorch (vmap, jvp)."""
    if torch.compiler.is_compiling() or torch._C._get_tracing_state() is not None:
        return True
    try:
        return torch._C._functorch.is_functorch_wrapped_tensor(x)
    except AttributeError:  # private API; torch versions without it have no functorch wrappers to see
        return False


def use_cpu(x: Tensor, backend: str, op: str, *params: object) -> bool:
    """Decide, for one call, whether the fast CPU path runs.

    Args:
        x: the input tensor.
        backend: only ``"auto"`` picks the CPU path (``"torch"`` always runs the spec), unless the
            ``RECTLAB_BACKEND`` environment variable replaces it (`rectlab.activations.backend.backend_from_env`).
        op: the module's op name (``"prelu"``, ``"smelu"`` ...); see `CPU_OPS`.
        *params: the op's parameters; tensors must be CPU tensors of ``x``'s dtype (a mix, as under
            autocast, runs the spec, which promotes like PyTorch does).

    Returns:
        True when ``x`` is a plain CPU tensor of a dtype in `DTYPES`, ``op`` has a CPU path, and
        nothing is tracing or transforming the call.
    """
    if op not in CPU_OPS or not x.is_cpu or x.dtype not in DTYPES or backend_from_env(backend) != "auto":
        return False
    for p in params:
        if isinstance(p, Tensor) and (p.dtype != x.dtype or not p.is_cpu):
            return False
    return not _transformed(x)


def _needs_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _reduce_to(buf: Tensor, param: Tensor, dim: int) -> Tensor:
    """Sum ``buf`` over every dim but the channel ``dim`` (all dims for a 1-value ``param``), in fp32 for
    low precision, returned with ``param``'s shape and dtype."""
    acc = torch.float32 if buf.dtype in (torch.bfloat16, torch.float16) else buf.dtype
    if param.numel() == 1:
        total = buf.sum(dtype=acc)
    else:
        d = dim % buf.dim()
        total = buf.sum(dim=[i for i in range(buf.dim()) if i != d], dtype=acc)
    return total.reshape(param.shape).to(param.dtype)


def _sum_of_products(a: Tensor, b: Tensor) -> Tensor:
    """``sum(a * b)`` as a 0-d tensor, in fp32 for low precision: one dot product and no temporary for two float32
    / float64 tensors laid out alike."""
    if a.dtype in (torch.float32, torch.float64) and a.is_contiguous() and b.is_contiguous():
        return torch.dot(a.view(-1), b.view(-1))
    if a.dtype in (torch.float32, torch.float64) and _same_dense_layout(a, b):
        return torch.dot(_flat(a), _flat(b))
    acc = torch.float32 if a.dtype in (torch.bfloat16, torch.float16) else a.dtype
    return (a * b).sum(dtype=acc)


def _same_dense_layout(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and a.stride() == b.stride() and _layout.is_dense(a)


def _flat(t: Tensor) -> Tensor:
    return _layout.flat(t) if t.numel() else t.reshape(-1)


# ----------------------------------------------------------------------------------------------------
# PReLU
# ----------------------------------------------------------------------------------------------------


def _prelu_forward(x: Tensor, weight: Tensor, dim: int) -> Tensor:
    """``x > 0 ? x : a * x`` in one vectorized pass (``_prelu_kernel``, the kernel of ``F.prelu``)."""
    if x.dim() >= 2 and dim in (1, 1 - x.dim()) and weight.dim() == 1 and weight.numel() in (1, x.shape[1]):
        return F.prelu(x, weight)  # the same kernel, the weight reshaped in C++ (less per-call overhead)
    return _prelu_kernel(x, AF.broadcast_param(weight, x, dim, "PReLU weight"))  # validates like the spec


class PReLUFunction(torch.autograd.Function):
    """PReLU ``y = x if x > 0 else a * x``: ``apply(x, weight, dim)``, with ``a`` the weight viewed to
    broadcast against ``x`` along ``dim`` (`rectlab.activations.functional.broadcast_param`).

    Backward, in one buffer ``buf`` (the input gradient's own, so no full-size temporary):
        dL/da[c] = sum over x <= 0 of g * x = sum(g * min(x, 0))   -> buf = min(x, 0); buf *= g; reduce
        dL/dx    = g if x > 0 else a * g = t + a * (g - t)          -> buf = (g if x > 0 else 0); buf.lerp_(g, a)
    ``lerp`` is exact here: ``t == g`` gives ``g``, ``t == 0`` gives ``a * g`` (one rounding, as the spec).
    A shared weight takes ``leaky_relu_backward`` with its value instead (one pass, into the same buffer).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, dim: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.dim = dim
        return _prelu_forward(x, weight, dim)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        x, weight = ctx.saved_tensors
        a = AF.broadcast_param(weight, x, ctx.dim)
        need_dx, need_dw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        dx = dw = None
        if need_dw:
            buf = torch.clamp_max(x, 0).mul_(g)  # g * min(x, 0), in x's layout
            dw = _reduce_to(buf, weight, ctx.dim)
        else:
            buf = torch.empty_like(x)
        if need_dx and a.numel() == 1:
            dx = _aten.leaky_relu_backward.grad_input(g, x, a.item(), False, grad_input=buf)
        elif need_dx:
            dx = _aten.threshold_backward.grad_input(g, x, 0, grad_input=buf).lerp_(g, a)
        return dx, dw, None


def prelu(x: Tensor, weight: Tensor, dim: int = 1) -> Tensor:
    """PReLU on CPU (He et al. 2015): the spec's values and gradients, computed with native kernels.

    Args:
        x: input of any shape and layout.
        weight: 1 value (channel-shared) or one per channel along ``dim``, of ``x``'s dtype.
        dim: the channel dimension.
    """
    if not _needs_grad(x, weight):
        return _prelu_forward(x, weight, dim)
    AF.broadcast_param(weight, x, dim, "PReLU weight")  # same validation and messages as the spec
    return PReLUFunction.apply(x, weight, dim)


# ----------------------------------------------------------------------------------------------------
# RReLU (training)
# ----------------------------------------------------------------------------------------------------


class RReLUFunction(torch.autograd.Function):
    """RReLU in training, ``y = x if x >= 0 else s * x``: ``apply(x, s)`` with the per-element slopes ``s``.

    Backward: dL/dx = g if x >= 0 else s * g = t + s * (g - t), with t = (g if x >= 0 else 0) from
    ``threshold_backward`` at the largest value below zero (so that x == 0 counts as >= 0, as in the spec).
    """

    @staticmethod
    def forward(ctx, x: Tensor, s: Tensor) -> Tensor:
        ctx.save_for_backward(x, s)
        # x > 0 ? x : s * x equals the spec's x >= 0 ? x : s * x, also at x == +-0 (s * 0 == x)
        return _prelu_kernel(x, s)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        x, s = ctx.saved_tensors
        info = torch.finfo(x.dtype)
        below = -info.tiny * info.eps  # the negative number closest to 0 (the smallest subnormal)
        return _aten.threshold_backward(g, x, below).lerp_(g, s), None


def rrelu(
    x: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """RReLU on CPU (Xu et al. 2015). Training draws the slopes exactly as the spec does (same generator
    calls, same tensor), so under one seed it gives the spec's values bit for bit; evaluation is the spec
    (PyTorch's leaky ReLU with the mean slope)."""
    if not training:
        return AF.rrelu(x, lower, upper, training=False)
    slopes = torch.empty_like(x, dtype=torch.float32).uniform_(lower, upper, generator=generator).to(x.dtype)
    if not _needs_grad(x):
        return _prelu_kernel(x, slopes)
    return RReLUFunction.apply(x, slopes)


# ----------------------------------------------------------------------------------------------------
# HeLU
# ----------------------------------------------------------------------------------------------------


class HeLUFunction(torch.autograd.Function):
    """HeLU: ``y = relu(x)``; backward dL/dx = g if x > -alpha else 0 (one ``threshold_backward``, the very
    kernel of ReLU's backward with the threshold moved). ``apply(x, alpha)``."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return torch.relu(x)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        (x,) = ctx.saved_tensors
        return _aten.threshold_backward(g, x, -ctx.alpha), None


def helu(x: Tensor, alpha: float = 0.05) -> Tensor:
    """HeLU on CPU (Kimhi et al. 2024): ReLU forward, gradient where ``x > -alpha``."""
    if alpha < 0:
        raise InputError(f"HeLU alpha must be >= 0 (the backward threshold is -alpha), got {alpha}")
    if not _needs_grad(x):
        return torch.relu(x)
    return HeLUFunction.apply(x, float(alpha))


# ----------------------------------------------------------------------------------------------------
# SmeLU
# ----------------------------------------------------------------------------------------------------


def _smelu_slope(x: Tensor, beta: float) -> Tensor:
    """``d = clamp((x + beta) / (2 beta), 0, 1)``, SmeLU's derivative, as ``hardsigmoid(3 x / beta)``
    (``hardsigmoid(z) = clamp(z / 6 + 1/2, 0, 1)``): two native passes, a fresh buffer."""
    return F.hardsigmoid(x * (3.0 / beta), inplace=True)


class SmeLUFunction(torch.autograd.Function):
    """SmeLU (Shamir et al. 2020): ``apply(x, beta)``.

    With ``d = clamp((x + beta) / (2 beta), 0, 1)`` (the derivative), each in one buffer:
        y     = max(x, beta * d^2)   ((x + beta)^2 / (4 beta) >= x everywhere; 0 >= x below -beta; beta <= x above)
        dL/dx = g * d                (``d`` recomputed from the saved ``x``: two cheap passes cost less than a
                                     second fresh full-size buffer in the forward)
    """

    @staticmethod
    def forward(ctx, x: Tensor, beta: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.beta = beta
        return _smelu_forward(x, beta)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        (x,) = ctx.saved_tensors
        return _smelu_slope(x, ctx.beta).mul_(g), None


def _smelu_forward(x: Tensor, beta: float) -> Tensor:
    y = _smelu_slope(x, beta).square_()
    if beta != 1.0:
        y.mul_(beta)
    return torch.maximum(y, x, out=y)


def smelu(x: Tensor, beta: float = 1.0) -> Tensor:
    """SmeLU on CPU: ``0`` below ``-beta``, ``(x + beta)^2 / (4 beta)`` between, ``x`` above ``beta``."""
    if beta <= 0:
        raise InputError(f"SmeLU beta must be > 0 (the half-width of the quadratic region), got {beta}")
    beta = float(beta)
    if not _needs_grad(x):
        return _smelu_forward(x, beta)
    return SmeLUFunction.apply(x, beta)


# ----------------------------------------------------------------------------------------------------
# Swish
# ----------------------------------------------------------------------------------------------------


_SIGMOID_IS_ONE = 40.0
"""``sigmoid(z)`` rounds to 1 above this even in float64 (``1 - 4e-18``), and ``exp(z)`` is finite below it."""

_SWISH_RECOMPUTE_FROM = 32 << 20
"""Input bytes from which learnable Swish saves nothing but ``x`` and ``y`` (`SwishRecomputeFunction`). From 32 MiB
on glibc's allocator maps every new buffer afresh (32 MiB is its largest mmap threshold), so each call pays a page
fault per 4 KiB of every fresh buffer, and one fresh buffer fewer outweighs two more ``exp`` passes; below, the
single ``exp`` of `SwishFunction` is faster (measured: see ``docs/activations.md``, "Speed on CPU")."""


def _times_sigmoid(t: Tensor, x: Tensor, beta: float, out: Tensor | None = None) -> Tensor:
    """``t * sigmoid(beta * x)`` in one native pass: softplus's derivative, ``softplus_backward``, whose kernel
    computes ``t * e / (e + 1)`` with one vectorized ``exp(beta x)`` (and ``t`` itself where ``beta x`` is above
    `_SIGMOID_IS_ONE`); for bf16 in float32, rounded once. ``out`` may be ``t`` or ``x``."""
    if out is None:
        return _aten.softplus_backward(t, x, beta, _SIGMOID_IS_ONE)
    return _aten.softplus_backward.grad_input(t, x, beta, _SIGMOID_IS_ONE, grad_input=out)


def _sum_of_products_to(a: Tensor, b: Tensor, param: Tensor, dim: int) -> Tensor:
    """``sum(a * b)`` over every dim but the channel ``dim`` (all dims for a 1-value ``param``), in fp32 for low
    precision, with ``param``'s shape and dtype. No full-size temporary for float32 / float64 ``a`` and ``b`` laid
    out alike: one beta takes a dot product; one per channel of contiguous tensors with the channels on dim 1 takes
    the per-channel reduction of ``native_batch_norm_backward`` (its weight gradient is ``sum(dy * (x - mean) *
    invstd)``, here with mean 0 and invstd 1)."""
    if param.numel() == 1:
        return _sum_of_products(a, b).reshape(param.shape).to(param.dtype)
    if (
        a.dtype == b.dtype == param.dtype
        and a.dtype in (torch.float32, torch.float64)
        and a.dim() >= 2
        and dim % a.dim() == 1
        and a.numel() > 0  # the kernel divides by the count per channel
        and a.is_contiguous()
        and b.is_contiguous()
    ):
        zero, one = param.new_zeros(a.shape[1]), param.new_ones(a.shape[1])
        total = _aten.native_batch_norm_backward(a, b, None, None, None, zero, one, True, 0.0, [False, True, False])[1]
        return total.reshape(param.shape)
    return _reduce_to(a * b, param, dim)


def _saved_tensors_unhooked() -> bool:
    """True when no saved-tensor hooks are active (checkpointing, offloading, packing), so that a tensor saved now
    is held by autograd alone. Private API: ``False`` on a torch without it."""
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    return top is not None and top(False) is None


def _graph_freed() -> bool:
    """True inside a backward after which autograd frees the graph (no ``retain_graph``, no ``create_graph``): the
    saved tensors of the node running now are not read again. Private API: ``False`` on a torch without it."""
    keep = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    return keep is not None and not keep()


class SwishFunction(torch.autograd.Function):
    """Learnable Swish ``y = x * s`` with ``s = sigmoid(b x)``: ``apply(x, beta, b, dim)`` with ``b`` the tensor
    ``beta`` viewed to broadcast against ``x`` along ``dim``, or for a 1-value ``beta`` its value as a number;
    float32 or float64 (`swish` runs bf16 in float32).

    One ``exp``, in the forward, which computes (with ``h = s (1 - s)``, ``sigmoid_backward``) and saves
        D  = dy/dx = s + b x h     (the input gradient's factor)
        Q2 = dy/db = x^2 h         (the beta gradient's)
    so that the backward is ReLU's: ``dL/dx = g * D`` and ``dL/db = sum(g * Q2)`` (a dot product for one beta, a
    per-channel reduction otherwise, no temporary). ``dL/dx`` is written over ``D`` itself when autograd frees the
    graph after this backward and no saved-tensor hook saw ``D``; otherwise into a fresh buffer. Fresh full-size
    buffers: ``s`` (then ``D``), ``y`` and ``x h`` (then ``Q2``); ``x`` is not saved. ``s`` and ``y`` are the
    spec's bit for bit, and ``h`` comes from the rounded ``s`` as in the spec, so that the beta gradient rounds
    like the spec's (where ``s`` is close to 1, ``1 - s`` keeps few bits, and ``x^2`` scales that error up).
    """

    @staticmethod
    def forward(ctx, x: Tensor, beta: Tensor, b: Tensor | float, dim: int) -> Tensor:
        need_dx, need_db = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        s = torch.mul(x, b).sigmoid_()
        y = x * s
        xh = _aten.sigmoid_backward(x, s)  # x s (1 - s)
        d = q2 = None
        if need_dx:
            d = s.add_(xh, alpha=b) if isinstance(b, float) else s.addcmul_(xh, b)
        if need_db:
            q2 = xh.mul_(x)
        ctx.save_for_backward(d, q2)
        ctx.reuse = _saved_tensors_unhooked()
        ctx.beta = beta.detach()  # for its shape and dtype
        ctx.dim = dim
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        d, q2 = ctx.saved_tensors
        db = None if q2 is None else _sum_of_products_to(g, q2, ctx.beta, ctx.dim)
        dx = None
        if d is not None:
            dx = d.mul_(g) if ctx.reuse and _graph_freed() else torch.mul(g, d)
        return dx, db, None, None


class SwishRecomputeFunction(torch.autograd.Function):
    """Learnable Swish for large inputs (from `_SWISH_RECOMPUTE_FROM` bytes): ``apply(x, beta, b, dim)`` as
    `SwishFunction`, saving only ``x``; two fresh full-size buffers a step, as ReLU's.

    Forward ``y = x * sigmoid(b x)`` in one native pass for one beta (`_times_sigmoid`), two per channel. The
    backward works in one buffer: ``s`` recomputed as the spec computes it, then ``x h`` and ``x^2 h`` over it for
    ``dL/db = sum(g * x^2 h)``, then ``b x`` and PyTorch's ``silu_backward`` for ``dL/dx = g * silu'(b x)``:
    three ``exp`` passes in all.
    """

    @staticmethod
    def forward(ctx, x: Tensor, beta: Tensor, b: Tensor | float, dim: int) -> Tensor:
        if isinstance(b, float):
            y = _times_sigmoid(x, x, b)
            ctx.save_for_backward(x)
        else:
            z = torch.mul(x, b)
            y = _times_sigmoid(x, z, 1.0, out=z)
            ctx.save_for_backward(x, b)
        ctx.b = b if isinstance(b, float) else None
        ctx.beta = beta.detach()
        ctx.dim = dim
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        x, *view = ctx.saved_tensors
        b: Tensor | float = ctx.b if ctx.b is not None else view[0]
        buf = db = dx = None
        if ctx.needs_input_grad[1]:
            buf = torch.mul(x, b).sigmoid_()
            _aten.sigmoid_backward.grad_input(x, buf, grad_input=buf).mul_(x)  # x^2 s (1 - s)
            db = _sum_of_products_to(g, buf, ctx.beta, ctx.dim)
        if ctx.needs_input_grad[0]:
            z = torch.mul(x, b) if buf is None else torch.mul(x, b, out=buf)
            dx = _aten.silu_backward.grad_input(g, z, grad_input=z)
        return dx, db, None, None


class _FixedSwishFunction(torch.autograd.Function):
    """Swish with a fixed number ``beta``: ``apply(x, beta)``. Forward one native pass (`_times_sigmoid`),
    ``x`` saved; backward ``dL/dx = g silu'(u)`` with ``u = beta x``: PyTorch's ``silu_backward`` over ``u``, in
    ``u``'s buffer."""

    @staticmethod
    def forward(ctx, x: Tensor, beta: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.beta = beta
        return _times_sigmoid(x, x, beta)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        (x,) = ctx.saved_tensors
        u = torch.mul(x, ctx.beta)
        return _aten.silu_backward.grad_input(g, u, grad_input=u), None


def swish(x: Tensor, beta: Tensor | float = 1.0, dim: int = 1) -> Tensor:
    """Swish on CPU (Ramachandran et al. 2017): ``x * sigmoid(beta * x)``.

    Args:
        x: input of any shape and layout.
        beta: a number (``1.0`` runs PyTorch's SiLU), or a tensor of 1 or ``x.shape[dim]`` values of
            ``x``'s dtype (learnable when it requires grad).
        dim: channel dimension for a per-channel ``beta``.
    """
    if not isinstance(beta, Tensor):
        beta = float(beta)
        if beta == 1.0:
            return F.silu(x)
        if not _needs_grad(x):
            return _times_sigmoid(x, x, beta)
        return _FixedSwishFunction.apply(x, beta)
    b = AF.broadcast_param(beta, x, dim, "Swish beta")
    if not _needs_grad(x, beta):
        if beta.numel() == 1:
            return _times_sigmoid(x, x, beta.item())
        return torch.mul(x, b).sigmoid_().mul_(x)
    if x.dtype == torch.bfloat16:  # in float32: bf16 roundings between the steps would exceed the spec's
        return swish(x.float(), beta.float(), dim).to(x.dtype)
    fn = SwishRecomputeFunction if x.numel() * x.element_size() >= _SWISH_RECOMPUTE_FROM else SwishFunction
    return fn.apply(x, beta, beta.item() if beta.numel() == 1 else b, dim)


# ----------------------------------------------------------------------------------------------------
# GCU
# ----------------------------------------------------------------------------------------------------


class GCUFunction(torch.autograd.Function):
    """GCU ``y = x cos x``: ``apply(x)``. Saves ``x`` and ``cos x`` (as the spec's graph does);
    backward dL/dx = g * (cos x - x sin x), computed in the buffer of ``sin x``."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        c = torch.cos(x)
        ctx.save_for_backward(x, c)
        return x * c

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        x, c = ctx.saved_tensors
        s = torch.sin(x)
        return torch.addcmul(c, x, s, value=-1, out=s).mul_(g)


def gcu(x: Tensor) -> Tensor:
    """GCU on CPU (Noel et al. 2021): ``x * cos(x)``."""
    if not _needs_grad(x):
        return torch.cos(x).mul_(x)
    return GCUFunction.apply(x)


# ----------------------------------------------------------------------------------------------------
# Mish
# ----------------------------------------------------------------------------------------------------

_MISH_BF16_NATIVE_ABOVE = 1 << 23
"""bf16 Mish computes in float32 temporaries; above 8M elements (32 MiB of float32, where glibc maps each
temporary afresh and every call pays its page faults) PyTorch's own ``F.mish`` is faster (measured: ours
0.68x of its time at 8M elements, 1.42x at 16M), so it runs there."""

_MISH_LINEAR_FROM = 20.0
"""Above this ``tanh(softplus(x))`` is 1 in float32 (1 - 2e-17), so ``x`` is clamped there before ``exp``."""


def _mish_input(x: Tensor) -> Tensor:
    """``min(x, 20)`` in a fresh buffer, in float32 for a bf16 ``x`` (Mish's several roundings in bf16 would
    exceed the one of PyTorch's kernel, which computes in float32)."""
    if x.dtype == torch.bfloat16:
        return x.float().clamp_max_(_MISH_LINEAR_FROM)
    return torch.clamp_max(x, _MISH_LINEAR_FROM)


def _mish_forward(x: Tensor) -> Tensor:
    """``x tanh(softplus(x)) = x t / (t + 2) = x / (1 + 2 / t)`` with ``t = e (e + 2)``, ``e = exp(x)``: one
    ``exp`` instead of PyTorch's ``exp``, ``log1p`` and ``tanh``, no cancellation, one buffer."""
    a = _mish_input(x).exp_()  # e
    a.addcmul_(a, a, value=0.5).reciprocal_().add_(1)  # 1 + 2 / t  (e + e^2 / 2 = t / 2)
    y = torch.div(x, a, out=a)
    return y if y.dtype == x.dtype else y.to(x.dtype)


def _mish_backward(g: Tensor, x: Tensor) -> Tensor:
    """``g * mish'(x)`` in two buffers. With ``h = t / 2 = e + e^2 / 2``:
    ``mish'(x) = tanh(sp) + x sech^2(sp) sigmoid(x) = (h (h + 1) + x e (1 + e)) / (h + 1)^2``, no cancellation."""
    a = _mish_input(x)  # x (clamped: above 20 the derivative is 1 in float32)
    c = a.exp()  # e
    a.mul_(c)
    a.addcmul_(a, c)  # x e (1 + e)
    c.addcmul_(c, c, value=0.5)  # h
    a.addcmul_(c, c).add_(c)  # + h (h + 1)
    c.add_(1).square_()  # (h + 1)^2
    dx = a.div_(c).mul_(g)
    return dx if dx.dtype == x.dtype else dx.to(x.dtype)


class MishFunction(torch.autograd.Function):
    """Mish (Misra 2019): ``apply(x)``. Saves ``x``; backward ``g * mish'(x)`` recomputed from it
    (`_mish_backward`)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return _mish_forward(x)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        (x,) = ctx.saved_tensors
        return _mish_backward(g, x)


def mish(x: Tensor) -> Tensor:
    """Mish on CPU: ``x * tanh(softplus(x))`` with one ``exp`` (PyTorch's ``F.mish`` takes three transcendental
    functions and about twice the time on this CPU)."""
    if x.dtype == torch.bfloat16 and x.numel() > _MISH_BF16_NATIVE_ABOVE:
        return F.mish(x)
    if not _needs_grad(x):
        return _mish_forward(x)
    return MishFunction.apply(x)
