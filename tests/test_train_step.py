"""The training step of rectlab.training.step: eager, and replayed from a (CUDA) graph.

A CUDA graph cannot run without a GPU. On CPU the graphed step runs with :class:`EmulatedGraph`, a stand-in
with CUDA-graph semantics (capture records and runs nothing, replay rewrites the captured output and gradient
buffers and nothing else), so that the step's own bookkeeping (warm-up, capture, copying batches in, the
eager optimizer update, gradients living in the graph's buffers, batches of another shape) is checked
against eager steps exactly. The real graph runs in the ``gpu`` tests.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from rectlab import activations as A
from rectlab.training.config import ConfigError, TrainConfig
from rectlab.training.loop import train_one
from rectlab.training.step import WARMUP_STEPS, CudaGraph, TrainStep

CUDA = torch.cuda.is_available()


class EmulatedGraph:
    """CPU stand-in for :class:`rectlab.training.step.CudaGraph` with the semantics of a CUDA graph."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.captures = self.replays = 0

    def warmup(self, fn):
        return fn()

    def capture(self, fn):
        # Capturing records the work without doing it: run it for its output and gradient buffers, then undo
        # every effect (parameters, buffers, RNG) and poison the buffers until the first replay.
        self.captures += 1
        state, rng = copy.deepcopy(self.model.state_dict()), torch.get_rng_state()
        self.fn = fn
        out, loss = fn()
        self.model.load_state_dict(state)
        torch.set_rng_state(rng)
        self.outputs = (out, loss)
        self.buffers = [p.grad for p in self.params]
        with torch.no_grad():
            for t in (out, loss, *self.buffers):
                t.fill_(float("nan"))
        return out, loss

    def replay(self) -> None:
        # Rewrite the captured buffers in place; whatever .grad the parameters hold now is left as it is.
        self.replays += 1
        held = [p.grad for p in self.params]
        for p in self.params:
            p.grad = None
        out, loss = self.fn()
        with torch.no_grad():
            for buf, p in zip(self.buffers, self.params):
                buf.copy_(p.grad)
            self.outputs[0].copy_(out)
            self.outputs[1].copy_(loss)
        for p, g in zip(self.params, held):
            p.grad = g


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), A.PReLU(8), A.RReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5)
    )  # fmt: skip


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    sizes = [4] * 6 + [3] + [4] * 3  # a batch of another shape after the capture
    return [(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g)) for n in sizes]


def _train(graphed: bool):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    graph = EmulatedGraph(model) if graphed else None
    step = TrainStep(model, nn.CrossEntropyLoss(), opt, None, torch.device("cpu"), graph)
    torch.manual_seed(5)  # RReLU draws its slopes from the global generator
    losses, predictions = [], []
    for i, (x, y) in enumerate(_batches()):
        for group in opt.param_groups:
            group["lr"] = 0.1 / (1 + i)  # a schedule: the eager update must see each step's lr
        out, loss = step(x, y)
        losses.append(loss.item())
        predictions.append(out.argmax(1).tolist())
    return losses, predictions, [p.detach().clone() for p in model.state_dict().values()], graph


def test_graphed_step_equals_the_eager_step() -> None:
    eager = _train(graphed=False)
    graphed = _train(graphed=True)
    assert graphed[0] == eager[0] and graphed[1] == eager[1]
    for a, b in zip(graphed[2], eager[2]):
        assert torch.equal(a, b)
    graph = graphed[3]
    assert graph.captures == 1 and graph.replays == len(_batches()) - WARMUP_STEPS - 1  # minus the odd batch


def test_cuda_graphs_refused_on_cpu_and_a_noop_on_auto_without_a_gpu() -> None:
    with pytest.raises(ConfigError, match="cuda_graphs=True needs a CUDA device"):
        TrainConfig(device="cpu", cuda_graphs=True)
    if CUDA:
        pytest.skip("device='auto' picks the GPU here")
    from rectlab.data import load

    digits = load("digits")
    cfg = TrainConfig(
        model="small-cnn",
        dataset="digits",
        epochs=1,
        batch_size=128,
        device="auto",
        activation="prelu",
        train_limit=512,
        test_limit=256,
    )
    plain = train_one(cfg, data=digits)
    with pytest.warns(RuntimeWarning, match="cuda_graphs=True has no effect on cpu"):
        graphed = train_one(cfg.replace(cuda_graphs=True), data=digits)

    def strip(ms):
        return [{k: v for k, v in m.items() if k != "seconds"} for m in ms]

    assert strip(graphed.metrics) == strip(plain.metrics)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_gpu_cuda_graph_step_matches_eager(amp) -> None:
    """The real CUDA graph against eager steps (deterministic activations: the same kernels run either way; only
    cuDNN's non-deterministic reductions may differ in the last bits)."""

    def run(graphed: bool):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), A.PReLU(8), A.GELU(), nn.Flatten(),
                              nn.Linear(8 * 6 * 6, 5)).cuda().to(memory_format=torch.channels_last)  # fmt: skip
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        graph = CudaGraph(torch.device("cuda")) if graphed else None
        step = TrainStep(model, nn.CrossEntropyLoss(), opt, amp, torch.device("cuda"), graph)
        losses = []
        for i, (x, y) in enumerate(_batches()):
            for group in opt.param_groups:
                group["lr"] = 0.1 / (1 + i)
            _, loss = step(x.cuda().to(memory_format=torch.channels_last), y.cuda())
            losses.append(loss.item())
        return losses, [p.detach().float() for p in model.parameters()]

    eager, graphed = run(False), run(True)
    tol = 1e-3 if amp is None else 2e-2
    assert graphed[0] == pytest.approx(eager[0], rel=tol, abs=tol)
    for a, b in zip(graphed[1], eager[1]):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_train_one_with_cuda_graphs() -> None:
    from rectlab.data import load

    digits = load("digits")
    cfg = TrainConfig(model="resnet20", dataset="digits", epochs=2, batch_size=128, device="cuda", activation="prelu")
    plain = train_one(cfg, data=digits)
    graphed = train_one(cfg.replace(cuda_graphs=True), data=digits)
    for a, b in zip(plain.metrics, graphed.metrics):
        assert abs(a["train_loss"] - b["train_loss"]) < 0.05 * max(1.0, a["train_loss"])
    assert graphed.metrics[-1]["test_error"] < 60
