"""The activation test recipe's comparison with the spec (DESIGN.md, "Tests"), for any fast path (the
fused Triton ops in ``test_fused.py``, the CPU paths in ``test_cpu.py``).

A fast path and the plain-torch spec run on cloned inputs; the output, the input gradient and every
parameter gradient are compared. fp32 / fp64: 1e-5 (``exact=True``: the forward bit for bit). bf16 / fp16:
the fast path's error to an fp32 spec is at most 2x PyTorch's own low-precision error (the spec run in
that dtype) plus 1e-6, for the output and for every gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

EDGES = (0.0, -0.0, 0.5, -0.5, -0.1, 0.1, 1e-3, -1e-3, 6.0, -6.0, 30.0, -30.0)
"""Values every layout starts with (in memory order): 0 and -0, the kinks of SmeLU (beta=0.5) and HeLU
(alpha=0.1), points beside them, and saturated tails."""


def layouts() -> dict[str, Callable[[torch.Generator], torch.Tensor]]:
    """name -> make(generator): the odd shapes and layouts of the recipe, first elements in memory EDGES."""

    def base(*shape: int):
        def make(g: torch.Generator) -> torch.Tensor:
            x = torch.randn(*shape, generator=g) * 2
            x.view(-1)[: len(EDGES)] = torch.tensor(EDGES)
            return x

        return make

    return {
        "1x1x1023": base(1, 1, 1023),
        "3x7x33": base(3, 7, 33),
        "nchw": base(2, 3, 5, 7),
        "channels_last": lambda g: base(2, 5, 7, 3)(g).permute(0, 3, 1, 2),  # NHWC memory, NCHW shape
        "transposed": lambda g: base(3, 33, 7)(g).transpose(1, 2),
        "sliced": lambda g: base(3, 7, 66)(g)[..., ::2],  # non-contiguous, not dense
    }


def grad_and_value(fn: Callable[..., torch.Tensor], x: torch.Tensor, params: tuple[torch.Tensor, ...], g: torch.Tensor):
    """``(y, grads)`` of ``fn(x, *params)`` on clones: grads w.r.t. ``x`` and the params that require grad."""
    x = x.detach().clone().requires_grad_(True)
    ps = [p.detach().clone().requires_grad_(p.requires_grad) for p in params]
    y = fn(x, *ps)
    wrt = [x] + [p for p in ps if p.requires_grad]
    return y.detach(), torch.autograd.grad(y, wrt, g)


def check_against_spec(
    fast: Callable[..., torch.Tensor],
    spec: Callable[..., torch.Tensor],
    x: torch.Tensor,
    params: tuple[torch.Tensor, ...] = (),
    exact: bool = False,
) -> None:
    """Assert that ``fast(x, *params)`` matches ``spec(x, *params)``: output, input and parameter gradients."""
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(x.dtype).to(x.device)
    y, grads = grad_and_value(fast, x, params, g)
    assert y.dtype == x.dtype and y.shape == x.shape
    if x.dtype in (torch.float32, torch.float64):
        y_ref, grads_ref = grad_and_value(spec, x, params, g)
        tol = 0 if exact else 1e-5
        torch.testing.assert_close(y, y_ref, rtol=tol, atol=tol)
        for name, a, b in zip(("dx", "dparam"), grads, grads_ref):
            assert a.dtype == b.dtype, name
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
        return
    # low precision: the spec in fp32 on the same values, PyTorch's own result in x.dtype
    y32, grads32 = grad_and_value(spec, x.float(), tuple(p.float() for p in params), g.float())
    y_lo, grads_lo = grad_and_value(spec, x, tuple(p.to(x.dtype) for p in params), g)
    for name, ours, theirs, ref in zip(("y", "dx", "dparam"), (y, *grads), (y_lo, *grads_lo), (y32, *grads32)):
        err = (ours.float() - ref).abs().max().item()
        err_torch = (theirs.float() - ref).abs().max().item()
        assert err <= 2 * err_torch + 1e-6, f"{name}: error {err:.3g} > 2 x PyTorch's {err_torch:.3g} + 1e-6"
    for p, dp in zip((p for p in params if p.requires_grad), grads[1:]):
        assert dp.dtype == p.dtype  # parameter gradients in the parameter's dtype
