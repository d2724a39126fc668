"""The training step (forward, loss, backward, optimizer update), run eagerly or replayed as a CUDA graph.

Small models leave a GPU mostly idle: a ResNet-20 step on a 128-image batch launches a few hundred small
kernels, and the CPU time to launch them, not the GPU, sets the pace. A CUDA graph records those launches
once and replays them with one call (PyTorch's "partial-network capture": forward, loss and backward in the
graph; the optimizer update, whose learning rate changes every step, eagerly after each replay).

``TrainConfig.cuda_graphs = True`` (``rectlab compare --cuda-graphs``, ``[base] cuda_graphs = true``) turns it
on; with ``compile = True`` as well, ``torch.compile(mode="reduce-overhead")`` (inductor's own CUDA graphs)
is used instead of the hand-captured graph. Graphs need static shapes: the trainer drops ragged last batches,
and a batch of another shape (if one ever comes) runs eagerly into the same gradient buffers. The first
[`WARMUP_STEPS`][rectlab.training.step.WARMUP_STEPS] steps run eagerly on a side stream (cuDNN / cuBLAS set-up, Triton
compilation and the fused kernels' self-check happen there, not during capture); every call is exactly one real training
step.

On a CPU there is nothing to capture: ``cuda_graphs`` with ``device="cpu"`` is refused by the config, and with
``device="auto"`` on a machine without a GPU it is a no-op that warns once.

A graphed step computes what the eager step computes, kernel for kernel; random numbers drawn inside the
graph (RReLU's seeds) come from the graph-safe CUDA generator, so runs with stochastic activations are
repeatable with graphs but do not draw the same numbers as eager runs.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor, nn

__all__ = ["WARMUP_STEPS", "CudaGraph", "TrainStep", "compiled_forward", "use_cuda_graphs"]

WARMUP_STEPS = 3
"""Eager steps before the capture (PyTorch's documented recipe warms up on a side stream)."""


def use_cuda_graphs(config: Any, device: torch.device, world: int = 1) -> bool:
    """Whether the hand-captured graph step applies: ``config.cuda_graphs`` on a CUDA device, in a single process
    (``world`` = 1: DDP's gradient all-reduce is not captured), without ``compile`` (which uses inductor's
    graphs, see [`compiled_forward`][rectlab.training.step.compiled_forward]). Warns when it cannot apply."""
    if not config.cuda_graphs:
        return False
    if world > 1:
        warnings.warn(
            f"cuda_graphs=True is not used in a job of {world} processes (DistributedDataParallel's gradient "
            "all-reduce is not captured); training runs eagerly",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    if device.type != "cuda":
        warnings.warn(
            f"cuda_graphs=True has no effect on {device.type}: CUDA graphs need a CUDA device "
            f"(device={config.device!r} resolved to the CPU); training runs eagerly",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return not config.compile


def compiled_forward(model: nn.Module, config: Any, device: torch.device) -> Callable[[Tensor], Tensor]:
    """What the trainer calls for the forward pass: the model (or its DDP wrapper), or ``torch.compile`` of it when
    ``config.compile`` (``mode="reduce-overhead"``, CUDA graphs by inductor, when ``config.cuda_graphs`` too and
    on a GPU)."""
    if not config.compile:
        return model
    if config.cuda_graphs and device.type == "cuda":
        return torch.compile(model, mode="reduce-overhead")
    return torch.compile(model)


class Graph(Protocol):
    """What [`TrainStep`][rectlab.training.step.TrainStep] needs from a graph: run warm-up work, capture a function,
    replay it."""

    def warmup(self, fn: Callable[[], Any]) -> Any: ...

    def capture(self, fn: Callable[[], Any]) -> Any: ...

    def replay(self) -> None: ...


class CudaGraph:
    """``torch.cuda.CUDAGraph`` with PyTorch's recipe: warm-up on a side stream, then capture, then replay."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.graph: torch.cuda.CUDAGraph | None = None

    def warmup(self, fn: Callable[[], Any]) -> Any:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            result = fn()
        torch.cuda.current_stream(self.device).wait_stream(side)
        return result

    def capture(self, fn: Callable[[], Any]) -> Any:
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            return fn()

    def replay(self) -> None:
        assert self.graph is not None, "capture() first"
        self.graph.replay()


class TrainStep:
    """One optimizer step on a batch: ``out, loss = step(x, y)``.

    Eager: autocast forward, ``criterion(out.float(), y)``, ``zero_grad(set_to_none=True)``, backward,
    ``optimizer.step()``. Graphed (``graph`` given): the same step, forward + loss + backward replayed from a
    CUDA graph captured at call [`WARMUP_STEPS`][rectlab.training.step.WARMUP_STEPS] + 1 (the gradients then live in the
    graph's buffers, which every replay overwrites), the optimizer update eager. ``out`` and ``loss`` of a graphed step
    are the graph's static outputs: use them before the next call.

    Args:
        forward: the model (or its compiled form).
        criterion: the loss, ``criterion(logits_float32, y)``.
        optimizer: updates the model's parameters.
        amp_dtype: autocast dtype (``torch.bfloat16``) or None for none.
        device: the training device.
        graph: a [`CudaGraph`][rectlab.training.step.CudaGraph] to replay the step from, or None for eager steps.
    """

    def __init__(
        self,
        forward: Callable[[Tensor], Tensor],
        criterion: Callable[[Tensor, Tensor], Tensor],
        optimizer: torch.optim.Optimizer,
        amp_dtype: torch.dtype | None,
        device: torch.device,
        graph: Graph | None = None,
    ) -> None:
        self.forward, self.criterion, self.optimizer = forward, criterion, optimizer
        self.amp_dtype, self.device, self.graph = amp_dtype, device, graph
        self.calls = 0
        self._static: tuple[Tensor, Tensor, Tensor, Tensor] | None = None  # x, y, out, loss

    def _autocast(self, cache: bool = True) -> Any:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        # Inside a CUDA graph capture autocast must not cache casted weights (PyTorch's CUDA graphs notes).
        return torch.autocast(self.device.type, dtype=self.amp_dtype, cache_enabled=cache)

    def _forward_loss(self, x: Tensor, y: Tensor, cache: bool = True) -> tuple[Tensor, Tensor]:
        with self._autocast(cache):
            out = self.forward(x)
            loss = self.criterion(out.float(), y)
        return out, loss

    def _eager(self, x: Tensor, y: Tensor, set_to_none: bool = True) -> tuple[Tensor, Tensor]:
        out, loss = self._forward_loss(x, y)
        self.optimizer.zero_grad(set_to_none=set_to_none)
        loss.backward()
        self.optimizer.step()
        return out, loss

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        self.calls += 1
        if self.graph is None:
            return self._eager(x, y)
        static = self._static
        if static is None:
            if self.calls <= WARMUP_STEPS:
                return self.graph.warmup(lambda: self._eager(x, y))
            static = self._capture(self.graph, x, y)
        sx, sy, out, loss = static
        if x.shape != sx.shape or y.shape != sy.shape or x.stride() != sx.stride():
            # Not the captured shape: an eager step that accumulates into the graph's zeroed gradient buffers,
            # so that the buffers (and the next replays) stay the parameters' gradients.
            return self._eager(x, y, set_to_none=False)
        sx.copy_(x)
        sy.copy_(y)
        self.graph.replay()
        self.optimizer.step()
        return out, loss

    def _capture(self, graph: Graph, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        sx, sy = x.clone(), y.clone()  # clone keeps channels_last
        self.optimizer.zero_grad(set_to_none=True)  # the backward in the graph allocates the gradient buffers

        def forward_backward() -> tuple[Tensor, Tensor]:
            out, loss = self._forward_loss(sx, sy, cache=False)
            loss.backward()
            return out, loss

        out, loss = graph.capture(forward_backward)
        self._static = (sx, sy, out, loss)
        return self._static
