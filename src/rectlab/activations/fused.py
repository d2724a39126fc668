"""Fused activations: Triton kernels behind ``torch.autograd.Function``s and ``torch.library`` custom ops.

Each op is one autograd.Function (Liger-Kernel style: ``forward`` runs the forward kernel, ``backward``
the one-pass backward kernel), and the same forward / setup_context / backward are registered as the
autograd formula of a ``torch.library.custom_op`` (``torch.ops.rectlab.*``), with fake (meta) functions,
so that ``torch.compile`` traces them as single nodes without graph breaks. The public functions below
(`relu`, `prelu`, ...) call the custom ops; which ops have them, and which kernel programs they
launch, is the ``triton`` column of the op table (`rectlab.activations.ops`).

Dispatch is per call and lives one layer up, in `rectlab.activations.selfcheck.use_fused`:
``backend="auto"`` runs a kernel only after it passed its self-check on that device, dtype and layout, and
the environment variable ``RECTLAB_BACKEND=torch|triton|auto`` replaces ``"auto"`` for a whole program.
Kernels are imported at the first fused call (``import rectlab`` does not import Triton).

Numerics: math in float32 inside the kernels; outputs and input gradients in the input's dtype
(fp32, bf16, fp16); parameter gradients (PReLU weight, Swish beta) reduced in float32 and returned in
the parameter's dtype. Under autocast a bf16 input with an fp32 parameter gives a bf16 output and an
fp32 parameter gradient.

Memory saver: the piecewise-linear ops marked ``save_mask`` in the op table take ``save_mask=True`` to keep a
packed 1-bit mask (``ceil(numel / 8)`` bytes) for the backward instead of the input (``numel * itemsize``
bytes): 16x less for bf16 / fp16, 32x less for fp32. It works where the gradient only needs the side of
the kink: ReLU, leaky ReLU, HeLU (``x > -alpha``), RReLU (slopes regenerated from the seed) and PReLU
with a frozen weight. It cannot work for the PReLU weight gradient, which needs ``x`` itself
(``sum g * x`` over ``x <= 0``), nor for smooth activations (ELU, GELU, Swish ...), whose derivative
depends on the value of ``x``.
"""

import contextlib
import importlib.util

import torch
from torch import Tensor

from .. import kernels
from ..errors import InputError, InputTypeError, UnavailableError
from ..kernels import _layout
from . import functional as AF

__all__ = [
    "BACKENDS",
    "DTYPES",
    "ElementwiseFunction",
    "PReLUFunction",
    "RReLUFunction",
    "SwishFunction",
    "celu",
    "check_backend",
    "elu",
    "gcu",
    "gelu",
    "helu",
    "leaky_relu",
    "mish",
    "prelu",
    "relu",
    "rrelu",
    "selu",
    "silu",
    "smelu",
    "softplus",
    "swish",
    "triton_available",
]

BACKENDS = ("auto", "torch", "triton")

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
"""Tensor dtypes the kernels take."""


def check_backend(backend: str) -> str:
    """Validate a ``backend=`` argument: ``"auto"``, ``"torch"`` or ``"triton"``."""
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return backend


def triton_available() -> bool:
    """True when the ``triton`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("triton") is not None


def _kernels(family: str, x: Tensor):
    """The kernel module for ``family``, after checking that ``x`` can run it."""
    if not x.is_cuda and not kernels.interpret_requested():
        raise UnavailableError(
            f"rectlab's Triton kernels need a CUDA tensor, got a {x.device.type} one: use the plain-torch "
            "functions in rectlab.activations.functional (or backend='auto' / 'torch' on modules), or set "
            "TRITON_INTERPRET=1 to run the kernels in Triton's CPU interpreter"
        )
    if not triton_available():
        raise UnavailableError("rectlab's fused activations need the triton package: pip install triton")
    return kernels.load(family)


def _on_device(x: Tensor):
    """Launch on ``x``'s GPU (Triton launches on the current device)."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _check_input(x: Tensor, op: str) -> None:
    if x.dtype not in DTYPES:
        raise InputTypeError(
            f"fused {op} takes float32, bfloat16 or float16 tensors, got {x.dtype}; "
            "use rectlab.activations.functional for other dtypes"
        )


def _mask_bytes(x: Tensor) -> int:
    return (x.numel() + 7) // 8


def _empty_mask(x: Tensor, save_mask: bool) -> Tensor:
    return x.new_empty(_mask_bytes(x) if save_mask else 0, dtype=torch.uint8)


def _grad_like(grad: Tensor, ctx) -> Tensor:
    """``grad`` in the memory order of the forward's (dense) input, recorded on ``ctx``."""
    shape, stride = ctx.layout
    if (
        grad.shape == shape
        and _layout.is_dense(grad)
        and all(grad.stride(i) == stride[i] for i in range(grad.dim()) if shape[i] != 1)
    ):
        return grad
    out = torch.empty_strided(shape, stride, dtype=grad.dtype, device=grad.device)
    return out.copy_(grad)


# ----------------------------------------------------------------------------------------------------
# Elementwise family
# ----------------------------------------------------------------------------------------------------


@torch.library.custom_op("rectlab::elementwise", mutates_args=())
def _elementwise_op(x: Tensor, op: str, p0: float, p1: float, save_mask: bool) -> tuple[Tensor, Tensor]:
    with _on_device(x):
        return _kernels("elementwise", x).forward(x, op, p0, p1, save_mask)


@_elementwise_op.register_fake
def _(x: Tensor, op: str, p0: float, p1: float, save_mask: bool) -> tuple[Tensor, Tensor]:
    return torch.empty_like(x), _empty_mask(x, save_mask)


@torch.library.custom_op("rectlab::elementwise_backward", mutates_args=())
def _elementwise_backward_op(grad: Tensor, saved: Tensor, op: str, p0: float, p1: float, from_mask: bool) -> Tensor:
    with _on_device(grad):
        return _kernels("elementwise", grad).backward(grad, saved, op, p0, p1, from_mask)


@_elementwise_backward_op.register_fake
def _(grad: Tensor, saved: Tensor, op: str, p0: float, p1: float, from_mask: bool) -> Tensor:
    return torch.empty_like(grad)


class ElementwiseFunction(torch.autograd.Function):
    """``y = f(x)`` for an elementwise ``op`` of `rectlab.kernels.elementwise`.

    ``apply(x, op, p0, p1, save_mask)`` with a dense ``x``; returns ``(y, mask)``.
    """

    @staticmethod
    def forward(x: Tensor, op: str, p0: float, p1: float, save_mask: bool) -> tuple[Tensor, Tensor]:
        return torch.ops.rectlab.elementwise(x, op, p0, p1, save_mask)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, op, p0, p1, save_mask = inputs
        ctx.save_for_backward(output[1] if save_mask else x)
        ctx.params = (op, p0, p1, save_mask)
        ctx.layout = (x.shape, x.stride())

    @staticmethod
    def backward(ctx, grad_y: Tensor, grad_mask: Tensor | None):
        (saved,) = ctx.saved_tensors
        op, p0, p1, from_mask = ctx.params
        dx = torch.ops.rectlab.elementwise_backward(_grad_like(grad_y, ctx), saved, op, p0, p1, from_mask)
        return dx, None, None, None, None


_elementwise_op.register_autograd(ElementwiseFunction.backward, setup_context=ElementwiseFunction.setup_context)


def _elementwise(x: Tensor, op: str, p0: float = 0.0, p1: float = 0.0, save_mask: bool = False) -> Tensor:
    """Program ``op`` of the elementwise family (which refuses ``save_mask`` where its backward needs ``x``)."""
    _check_input(x, op)
    return torch.ops.rectlab.elementwise(_layout.dense(x), op, float(p0), float(p1), bool(save_mask))[0]


def relu(x: Tensor, save_mask: bool = False) -> Tensor:
    """ReLU, fused. ``save_mask=True`` keeps a 1-bit mask for the backward instead of ``x``."""
    return _elementwise(x, "relu", save_mask=save_mask)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, save_mask: bool = False) -> Tensor:
    """Leaky ReLU, fused (gradient ``negative_slope`` at 0, as PyTorch)."""
    return _elementwise(x, "leaky-relu", negative_slope, save_mask=save_mask)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """ELU, fused."""
    return _elementwise(x, "elu", alpha)


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """CELU, fused (``alpha > 0``)."""
    if alpha <= 0:
        raise InputError(f"CELU alpha must be > 0, got {alpha}")
    return _elementwise(x, "celu", alpha)


def selu(x: Tensor) -> Tensor:
    """SELU, fused, with the self-normalizing constants of `rectlab.activations.functional`."""
    return _elementwise(x, "selu", AF.SELU_ALPHA, AF.SELU_SCALE)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU, fused: exact (``approximate="none"``, erf) or the tanh form (``"tanh"``)."""
    if approximate not in ("none", "tanh"):
        raise InputError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return _elementwise(x, "gelu" if approximate == "none" else "gelu-tanh")


def silu(x: Tensor) -> Tensor:
    """SiLU ``x * sigmoid(x)``, fused."""
    return _elementwise(x, "silu")


def mish(x: Tensor) -> Tensor:
    """Mish ``x * tanh(softplus(x))``, fused."""
    return _elementwise(x, "mish")


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """Softplus, fused; linear where ``beta * x > threshold``, as PyTorch."""
    if beta <= 0:
        raise InputError(f"Softplus beta must be > 0, got {beta}")
    return _elementwise(x, "softplus", beta, threshold)


def smelu(x: Tensor, beta: float = 1.0) -> Tensor:
    """SmeLU (Shamir et al. 2020), fused (``beta > 0``)."""
    if beta <= 0:
        raise InputError(f"SmeLU beta must be > 0 (the half-width of the quadratic region), got {beta}")
    return _elementwise(x, "smelu", beta)


def helu(x: Tensor, alpha: float = 0.05, save_mask: bool = False) -> Tensor:
    """HeLU, fused: ReLU forward, gradient where ``x > -alpha``. ``save_mask=True`` keeps that 1-bit mask."""
    if alpha < 0:
        raise InputError(f"HeLU alpha must be >= 0 (the backward threshold is -alpha), got {alpha}")
    return _elementwise(x, "helu", alpha, save_mask=save_mask)


def gcu(x: Tensor) -> Tensor:
    """GCU ``x cos x``, fused."""
    return _elementwise(x, "gcu")


# ----------------------------------------------------------------------------------------------------
# RReLU (training)
# ----------------------------------------------------------------------------------------------------


@torch.library.custom_op("rectlab::rrelu", mutates_args=())
def _rrelu_op(x: Tensor, seed: Tensor, lower: float, upper: float, save_mask: bool) -> tuple[Tensor, Tensor]:
    with _on_device(x):
        return _kernels("rrelu", x).forward(x, seed, lower, upper, save_mask)


@_rrelu_op.register_fake
def _(x: Tensor, seed: Tensor, lower: float, upper: float, save_mask: bool) -> tuple[Tensor, Tensor]:
    return torch.empty_like(x), _empty_mask(x, save_mask)


@torch.library.custom_op("rectlab::rrelu_backward", mutates_args=())
def _rrelu_backward_op(
    grad: Tensor, saved: Tensor, seed: Tensor, lower: float, upper: float, from_mask: bool
) -> Tensor:
    with _on_device(grad):
        return _kernels("rrelu", grad).backward(grad, saved, seed, lower, upper, from_mask)


@_rrelu_backward_op.register_fake
def _(grad: Tensor, saved: Tensor, seed: Tensor, lower: float, upper: float, from_mask: bool) -> Tensor:
    return torch.empty_like(grad)


class RReLUFunction(torch.autograd.Function):
    """RReLU in training mode: ``apply(x, seed, lower, upper, save_mask)`` with a dense ``x`` and a
    1-element int64 ``seed`` on ``x``'s device; returns ``(y, mask)``. The slopes are regenerated
    from ``seed`` in backward, never stored."""

    @staticmethod
    def forward(x: Tensor, seed: Tensor, lower: float, upper: float, save_mask: bool) -> tuple[Tensor, Tensor]:
        return torch.ops.rectlab.rrelu(x, seed, lower, upper, save_mask)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, seed, lower, upper, save_mask = inputs
        ctx.save_for_backward(output[1] if save_mask else x, seed)
        ctx.params = (lower, upper, save_mask)
        ctx.layout = (x.shape, x.stride())

    @staticmethod
    def backward(ctx, grad_y: Tensor, grad_mask: Tensor | None):
        saved, seed = ctx.saved_tensors
        lower, upper, from_mask = ctx.params
        dx = torch.ops.rectlab.rrelu_backward(_grad_like(grad_y, ctx), saved, seed, lower, upper, from_mask)
        return dx, None, None, None, None


_rrelu_op.register_autograd(RReLUFunction.backward, setup_context=RReLUFunction.setup_context)


def rrelu(
    x: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    save_mask: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """RReLU, fused. Training: a slope ``a ~ U(lower, upper)`` per element, drawn in the kernel from a seed
    that is itself drawn from PyTorch's generator (``generator`` or the default of ``x``'s device), so
    ``torch.manual_seed`` makes runs repeat. Evaluation: leaky ReLU with the mean slope.

    ``save_mask=True`` keeps a 1-bit mask for the backward instead of ``x``.
    """
    if not 0 <= lower <= upper:
        raise InputError(f"RReLU needs 0 <= lower <= upper, got lower={lower}, upper={upper}")
    if not training:
        return _elementwise(x, "leaky-relu", (lower + upper) / 2, save_mask=save_mask)
    _check_input(x, "rrelu")
    seed = torch.randint(0, 2**62, (1,), dtype=torch.int64, device=x.device, generator=generator)
    return torch.ops.rectlab.rrelu(_layout.dense(x), seed, float(lower), float(upper), bool(save_mask))[0]


# ----------------------------------------------------------------------------------------------------
# PReLU
# ----------------------------------------------------------------------------------------------------


@torch.library.custom_op("rectlab::prelu", mutates_args=())
def _prelu_op(x: Tensor, weight: Tensor, dim: int, save_mask: bool) -> tuple[Tensor, Tensor]:
    with _on_device(x):
        return _kernels("channel", x).forward(x, weight, "prelu", dim, save_mask)


@_prelu_op.register_fake
def _(x: Tensor, weight: Tensor, dim: int, save_mask: bool) -> tuple[Tensor, Tensor]:
    return torch.empty_like(x), _empty_mask(x, save_mask)


@torch.library.custom_op("rectlab::prelu_backward", mutates_args=())
def _prelu_backward_op(
    grad: Tensor, saved: Tensor, weight: Tensor, dim: int, from_mask: bool, need_dx: bool, need_dw: bool
) -> tuple[Tensor, Tensor]:
    with _on_device(grad):
        dx, dw = _kernels("channel", grad).backward(grad, saved, weight, "prelu", dim, from_mask, need_dx, need_dw)
    return (grad.new_empty(0) if dx is None else dx), (weight.new_empty(0) if dw is None else dw)


@_prelu_backward_op.register_fake
def _(
    grad: Tensor, saved: Tensor, weight: Tensor, dim: int, from_mask: bool, need_dx: bool, need_dw: bool
) -> tuple[Tensor, Tensor]:
    dx = torch.empty_like(grad) if need_dx else grad.new_empty(0)
    return dx, (torch.empty_like(weight) if need_dw else weight.new_empty(0))


class PReLUFunction(torch.autograd.Function):
    """PReLU: ``apply(x, weight, dim, save_mask)`` with a dense ``x``; returns ``(y, mask)``.

    One backward pass gives the input gradient and the weight gradient (per-program partial sums,
    reduced afterwards). With ``save_mask`` only the input gradient is available (frozen weight).
    """

    @staticmethod
    def forward(x: Tensor, weight: Tensor, dim: int, save_mask: bool) -> tuple[Tensor, Tensor]:
        return torch.ops.rectlab.prelu(x, weight, dim, save_mask)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, weight, dim, save_mask = inputs
        ctx.save_for_backward(output[1] if save_mask else x, weight)
        ctx.params = (dim, save_mask)
        ctx.layout = (x.shape, x.stride())

    @staticmethod
    def backward(ctx, grad_y: Tensor, grad_mask: Tensor | None):
        saved, weight = ctx.saved_tensors
        dim, from_mask = ctx.params
        need_dx, need_dw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if need_dw and from_mask:
            raise InputError("PReLU with save_mask=True cannot give the weight gradient: it needs the input x")
        dx, dw = torch.ops.rectlab.prelu_backward(
            _grad_like(grad_y, ctx), saved, weight, dim, from_mask, need_dx, need_dw
        )
        return (dx if need_dx else None), (dw if need_dw else None), None, None


_prelu_op.register_autograd(PReLUFunction.backward, setup_context=PReLUFunction.setup_context)


def prelu(x: Tensor, weight: Tensor, dim: int = 1, save_mask: bool = False) -> Tensor:
    """PReLU, fused: ``x`` for ``x > 0`` else ``weight[c] * x``; ``weight`` shared (1 value) or per channel.

    Args:
        x: NCHW / channels_last / (N, C) / (N, L, C) / any shape; dense layouts are used as they are.
        weight: 1 or ``x.shape[dim]`` values (any float dtype; read as float32).
        dim: the channel dimension.
        save_mask: keep a 1-bit mask instead of ``x`` for the backward; only when the weight is frozen
            (its gradient needs ``x``).
    """
    _check_input(x, "prelu")
    AF.broadcast_param(weight, x, dim, "PReLU weight")  # same validation and messages as the reference
    if save_mask and weight.requires_grad and torch.is_grad_enabled():
        raise InputError(
            "PReLU save_mask=True drops x, but the weight gradient needs it: freeze the weight "
            "(weight.requires_grad_(False)) or use save_mask=False"
        )
    w = weight if weight.is_contiguous() else weight.contiguous()
    return torch.ops.rectlab.prelu(_layout.dense(x), w, int(dim), bool(save_mask))[0]


# ----------------------------------------------------------------------------------------------------
# Swish
# ----------------------------------------------------------------------------------------------------


@torch.library.custom_op("rectlab::swish", mutates_args=())
def _swish_op(x: Tensor, beta: Tensor, dim: int) -> Tensor:
    with _on_device(x):
        return _kernels("channel", x).forward(x, beta, "swish", dim)[0]


@_swish_op.register_fake
def _(x: Tensor, beta: Tensor, dim: int) -> Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("rectlab::swish_backward", mutates_args=())
def _swish_backward_op(
    grad: Tensor, x: Tensor, beta: Tensor, dim: int, need_dx: bool, need_dbeta: bool
) -> tuple[Tensor, Tensor]:
    with _on_device(grad):
        dx, db = _kernels("channel", grad).backward(grad, x, beta, "swish", dim, False, need_dx, need_dbeta)
    return (grad.new_empty(0) if dx is None else dx), (beta.new_empty(0) if db is None else db)


@_swish_backward_op.register_fake
def _(grad: Tensor, x: Tensor, beta: Tensor, dim: int, need_dx: bool, need_dbeta: bool) -> tuple[Tensor, Tensor]:
    dx = torch.empty_like(grad) if need_dx else grad.new_empty(0)
    return dx, (torch.empty_like(beta) if need_dbeta else beta.new_empty(0))


class SwishFunction(torch.autograd.Function):
    """Swish ``x * sigmoid(beta x)``: ``apply(x, beta, dim)`` with a dense ``x`` and a tensor ``beta``
    (1 value or one per channel). The beta gradient is reduced in the same backward pass."""

    @staticmethod
    def forward(x: Tensor, beta: Tensor, dim: int) -> Tensor:
        return torch.ops.rectlab.swish(x, beta, dim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, beta, dim = inputs
        ctx.save_for_backward(x, beta)
        ctx.dim = dim
        ctx.layout = (x.shape, x.stride())

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        x, beta = ctx.saved_tensors
        need_dx, need_db = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        dx, db = torch.ops.rectlab.swish_backward(_grad_like(grad_y, ctx), x, beta, ctx.dim, need_dx, need_db)
        return (dx if need_dx else None), (db if need_db else None), None


_swish_op.register_autograd(SwishFunction.backward, setup_context=SwishFunction.setup_context)


def swish(x: Tensor, beta: Tensor | float = 1.0, dim: int = 1) -> Tensor:
    """Swish, fused: ``x * sigmoid(beta * x)``; ``beta`` a number, or a tensor of 1 or ``x.shape[dim]``
    values (learnable when it requires grad)."""
    _check_input(x, "swish")
    if not isinstance(beta, Tensor):
        beta = torch.full((1,), float(beta), device=x.device)
    AF.broadcast_param(beta, x, dim, "Swish beta")
    b = beta if beta.is_contiguous() else beta.contiguous()
    return torch.ops.rectlab.swish(_layout.dense(x), b, int(dim))
