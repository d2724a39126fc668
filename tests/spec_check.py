"""The activation test recipe's comparison with the spec, for any fast path (the fused Triton ops in
``test_fused.py``, the CPU paths in ``test_cpu.py``).

A fast path and the plain-torch spec run on cloned inputs; the output, the input gradient and every
parameter gradient are compared by :func:`rectlab.activations.selfcheck.compare`, the comparison of the runtime
self-check (fp32: 1e-5, ``exact=True``: the forward bit for bit; bf16 / fp16: the fast path's error to an fp32
spec at most 2x PyTorch's own low-precision error plus 1e-6). The inputs: the odd shapes and layouts of the
recipe, each starting (in memory order) with the kinks and tails of the self-check,
:data:`rectlab.activations.selfcheck.EDGES`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rectlab.activations import selfcheck

EDGES = selfcheck.EDGES


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


grad_and_value = selfcheck._value_and_grads
"""``(y, grads)`` of ``fn(x, *params)`` on clones: grads w.r.t. ``x`` and the params that require grad."""


def check_against_spec(
    fast: Callable[..., torch.Tensor],
    spec: Callable[..., torch.Tensor],
    x: torch.Tensor,
    params: tuple[torch.Tensor, ...] = (),
    exact: bool = False,
) -> None:
    """Assert that ``fast(x, *params)`` matches ``spec(x, *params)``: output, input and parameter gradients,
    with the comparison the runtime self-check uses (:func:`rectlab.activations.selfcheck.compare`)."""
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(x.dtype).to(x.device)
    problems = selfcheck.compare(fast, spec, x, params, g, exact=exact)
    assert not problems, "\n".join(problems)
