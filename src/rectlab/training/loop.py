"""One training run, top to bottom: ``train_one(config, run_dir) -> RunResult``.

The loop follows nanoGPT's habit of reading in one function; resuming and checkpointing are the two
small helpers `_resume` and `_checkpoint`. Small datasets live on the training device as
uint8 tensors and are normalized and augmented in batches (airbench style); large ones go through a
DataLoader. Every epoch ends with a checkpoint, so an interrupted run resumes where it stopped and, on
CPU, finishes with exactly the metrics of an uninterrupted run. A loss that becomes NaN or infinite
stops the run with [`Diverged`][rectlab.training.loop.Diverged]. Started by ``torchrun``, one run trains across all its
processes with DistributedDataParallel (see [`Distributed`][rectlab.training.loop.Distributed]).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .. import __version__, activations, models, surgery
from .. import data as rdata
from .. import init as rinit
from ..data import augment
from ..errors import InputError, RectlabError, UnavailableError
from ..files import atomic_path, sha256_file
from ..optim import param_groups
from ..probes import learned_slopes  # re-exported: rectlab.training.loop.learned_slopes stays importable
from . import pruning
from .config import TrainConfig, config_hash
from .step import CudaGraph, TrainStep, compiled_forward, use_cuda_graphs

__all__ = [
    "CheckpointError",
    "Checkpoints",
    "Distributed",
    "Diverged",
    "RunDirCheckpoints",
    "RunResult",
    "atomic_save",
    "build_model",
    "evaluate",
    "learned_slopes",
    "model_for",
    "resolve_device",
    "train_one",
    "versions",
]

Reporter = Callable[..., None]
EpochCallback = Callable[["EpochState"], None]

# How often (in optimizer steps) the loss is checked for NaN/inf: the per-step losses stay on the
# device in between, so there is no host sync per step; the exact step is found when it is checked.
DIVERGENCE_CHECK_EVERY = 50


class CheckpointError(RectlabError, RuntimeError):
    """A checkpoint to resume from cannot be used; the message names the file and what to do."""


class Diverged(FloatingPointError):
    """The training loss became NaN or infinite: an outcome of the run, not a crash.

    Attributes:
        epoch: the 1-based epoch in which it happened.
        step: the global optimizer step (1-based, counted from the start of the run) whose loss was not finite.
        loss: that loss, as text ("nan", "inf", "-inf").
    """

    def __init__(self, epoch: int, step: int, loss: str) -> None:
        super().__init__(
            f"training diverged in epoch {epoch} at step {step} (train loss {loss}); lower the "
            f"learning rate or use warmup"
        )
        self.epoch, self.step, self.loss = epoch, step, loss

    def as_dict(self) -> dict[str, Any]:
        """``{"epoch", "step", "loss"}``: what a study stores as ``extras["diverged"]``."""
        return {"epoch": self.epoch, "step": self.step, "loss": self.loss}


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        config: the resolved configuration.
        metrics: one dict per epoch (epoch, lr, train_loss, train_error, test_loss, test_error,
            test_top5_error, seconds, plus anything epoch callbacks added).
        extras: end-of-run information (learned activation slopes, erased sites, init gains).
        device: the device it ran on, in words.
        resumed_from_epoch: epochs that came from a checkpoint (0 for a fresh run).
    """

    config: TrainConfig
    metrics: list[dict[str, Any]]
    extras: dict[str, Any]
    device: str
    resumed_from_epoch: int = 0

    @property
    def final(self) -> dict[str, Any]:
        return self.metrics[-1] if self.metrics else {}


@dataclass
class EpochState:
    """Passed to epoch callbacks (probes): they may add entries to ``metrics``."""

    epoch: int
    model: nn.Module
    metrics: dict[str, Any]
    config: TrainConfig
    data: Any
    device: torch.device
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a ``torchrun`` job: ``rank`` of ``world`` processes (0 of 1 without one)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @staticmethod
    def current() -> Distributed:
        if dist.is_available() and dist.is_initialized():
            return Distributed(dist.get_rank(), dist.get_world_size())
        return Distributed()

    @staticmethod
    def init_from_env(device: str = "auto") -> Distributed:
        """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE`` > 1):
        NCCL for GPUs, gloo on CPU. Without ``torchrun`` nothing happens."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
            if gpu:
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group("nccl" if gpu else "gloo")
        return Distributed.current()

    def all_sum(self, *values: Tensor) -> list[Tensor]:
        """Sums over all processes (the values themselves without a process group)."""
        if self.world == 1:
            return list(values)
        out = []
        for v in values:
            v = v.clone()
            dist.all_reduce(v)
            out.append(v)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


class Checkpoints(Protocol):
    """Where a run's epoch checkpoints live. [`train_one`][rectlab.training.loop.train_one] asks `latest` once and calls
    `save` after every epoch; a study stores them so that the epoch row and the checkpoint commit
    together, and verifies a checkpoint against its committed checksum before resuming from it
    ([StoreCheckpoints][rectlab.study.checkpoints.StoreCheckpoints])."""

    def latest(self) -> Path | None:
        """The checkpoint file to resume from (one this object vouches for), or None to start from scratch."""

    def save(self, epoch: int, state: dict[str, Any], row: dict[str, Any]) -> None:
        """Make ``state`` (the run after ``epoch`` epochs; ``row`` is that epoch's metrics) durable."""


class RunDirCheckpoints:
    """``run_dir/checkpoint.pt``, replaced atomically after every epoch (it carries the metrics too)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / "checkpoint.pt"

    def latest(self) -> Path | None:
        return self.path if self.path.exists() else None

    def save(self, epoch: int, state: dict[str, Any], row: dict[str, Any]) -> None:
        atomic_save(state, self.path)


def atomic_save(obj: Any, path: Path) -> str:
    """``torch.save`` to a temporary file, flushed to disk, then renamed over ``path``: a reader (or a
    process killed meanwhile) sees the old file or the new one, never half of one.

    Returns:
        The SHA-256 of the file's bytes (64 hex digits).

    Raises:
        DiskError: the disk is full or read-only (the temporary file is removed; ``path`` is unchanged).
    """
    with atomic_path(path, f"the checkpoint {path}") as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
        digest = sha256_file(tmp)
    return digest


def versions(device: torch.device | None = None) -> dict[str, str]:
    """Versions and device recorded with every run."""
    info = {"rectlab": __version__, "torch": torch.__version__, "python": platform.python_version()}
    if device is not None:
        info["device"] = describe_device(device)
    return info


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is an error, not a fallback.

    Under ``torchrun`` (a process group is initialized), ``cuda``/``auto`` mean this process's GPU,
    ``cuda:$LOCAL_RANK``.
    """
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UnavailableError(f"device={spec!r} was requested but no CUDA GPU is available; use --device cpu or auto")
    if spec == "cuda" and Distributed.current().world > 1:
        spec = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return torch.device(spec)


def build_model(config: TrainConfig, num_classes: int, in_channels: int, example: Tensor) -> tuple[nn.Module, dict]:
    """Create the model, apply transforms (EraseReLU) and initialization; return it with a report."""
    act_kwargs = dict(config.activation_kwargs)
    if activations.accepts(config.activation, "backend"):  # rectlab's activations; a plugin's plain nn.Module need not
        act_kwargs["backend"] = config.backend
    make_act = activations.factory(config.activation, **act_kwargs)
    kwargs = dict(config.model_kwargs)
    if config.head != "linear":
        kwargs["head"] = config.head
    model = models.create(
        config.model,
        activation=make_act,
        num_classes=num_classes,
        in_channels=in_channels,
        example_input=example.detach().cpu(),
        **kwargs,
    )
    report: dict[str, Any] = {"num_classes": num_classes}  # chance level (ln C) for the analysis of stalled runs
    if config.erase_relu > 0:
        model, erased = surgery.erase_relu(
            model,
            location=config.erase_location,
            proportion=config.erase_relu,
            seed=config.seed,
            example_input=example,
            match=activations.parse_spec(config.activation)[0],
        )
        report["erased_sites"] = [str(s) for s in erased.erased]
    if config.init in ("he", "he-fan-out"):
        mode = "fan_out" if config.init == "he-fan-out" else "fan_in"
        _, plan = rinit.he_init_(model, mode=mode, example_input=example, return_report=True)
        report["init_gains"] = [
            {"layer": p.layer, "activation": p.activation, "gain": p.gain, "fan": p.fan} for p in plan
        ]
    elif config.init in ("xavier", "xavier-fan-in"):
        rinit.xavier_init_(model, mode="fan_in" if config.init == "xavier-fan-in" else "glorot")
    return model, report


def model_for(config: TrainConfig, data: Any) -> tuple[nn.Module, dict]:
    """The model [`train_one`][rectlab.training.loop.train_one] would train on ``data``, built, transformed and
    initialized on the CPU
    from two examples: a cheap way to find a bad model, activation or keyword argument before training."""
    config = config.replace(device="cpu", train_limit=2, test_limit=2)
    batches = _Batches(data, config, torch.device("cpu"), False, Distributed())
    return build_model(config, data.num_classes, data.in_channels, batches.example())


def _lr_at(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.schedule == "step":
        drops = sum(progress >= m for m in config.step_milestones)
        return config.lr * config.step_gamma**drops
    return config.lr


def _make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    # decay_activation_params: the ablation of He et al. 2015 (decay the slopes like any weight)
    groups = param_groups(model, config.weight_decay, decay_activation_params=config.decay_activation_params)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    return torch.optim.AdamW(groups, lr=config.lr)


class _Batches:
    """Training/evaluation batches from in-memory tensors (on the device) or a DataLoader.

    In-memory batches are augmented as uint8 (random crop + flip in one gather) and then normalized,
    all on the training device. Randomness comes from one CPU generator, so a seed gives the same
    data order and crops on every device, and its state is all a checkpoint needs.
    """

    def __init__(
        self, data: Any, config: TrainConfig, device: torch.device, channels_last: bool, dist: Distributed
    ) -> None:
        self.aug = augment
        self.config, self.device, self.channels_last, self.dist = config, device, channels_last, dist
        self.data = data.limit(train=config.train_limit, test=config.test_limit).to(device)
        self.in_memory = self.data.in_memory
        self.n_train = self.data.num_train
        if config.batch_size % dist.world:
            raise InputError(
                f"batch_size {config.batch_size} (the global batch) must be divisible by the "
                f"{dist.world} processes of this torchrun job"
            )

    def steps_per_epoch(self) -> int:
        bs = self.config.batch_size
        # The ragged last batch is dropped (BatchNorm dislikes tiny batches) unless it is the only one.
        return max(1, self.n_train // bs)

    def _finish(self, x: Tensor, train: bool, generator: torch.Generator | None) -> Tensor:
        d = self.data
        if self.in_memory:
            if train and self.config.augment and (d.crop_padding or d.flip):
                x = self.aug.random_crop_flip(x, d.crop_padding, d.flip, generator)
            x = self.aug.normalize(x, d.mean, d.std, torch.float32)
        else:
            x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train_batches(self, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch of training batches; under torchrun, this process's share of each global batch."""
        d, bs, rank, world = self.data, self.config.batch_size, self.dist.rank, self.dist.world
        if self.in_memory:
            # Every process draws the same global batch and augments it (cheap), then keeps its slice:
            # the job computes what one process with the whole batch would.
            batches = self.aug.iterate_batches(
                d.train_x, d.train_y, bs, shuffle=True, generator=generator, drop_last=self.n_train > bs
            )
            for x, y in batches:
                x = self._finish(x, True, generator)
                if world > 1:
                    part = len(x) // world
                    x, y = x[rank * part : (rank + 1) * part], y[rank * part : (rank + 1) * part]
                yield x, y
            return
        seed = int(torch.randint(0, 2**31, (1,), generator=generator))
        sampler: torch.utils.data.DistributedSampler | None = None
        if world > 1:  # each process reads only its own examples
            sampler = torch.utils.data.DistributedSampler(
                d.train_set, world, rank, shuffle=True, seed=seed, drop_last=True
            )
        loader = torch.utils.data.DataLoader(
            d.train_set,
            batch_size=bs // world,
            shuffle=sampler is None,
            sampler=sampler,
            drop_last=self.n_train > bs,
            generator=torch.Generator().manual_seed(seed),
            num_workers=min(4, os.cpu_count() or 1),
            pin_memory=self.device.type == "cuda",
        )
        for x, y in loader:
            yield self._finish(x, True, None), y.to(self.device, non_blocking=True)

    def test_batches(self, limit: int | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """The test set (its first ``limit`` examples when given) in batches."""
        d = self.data
        # 256 on a CPU: a 1024-image batch of a small CNN's activations (51 MB) falls out of the caches and
        # evaluates 1.5-1.9x slower (measured on the 2-core CI machine, 1 thread).
        batch_size = 1024 if self.device.type == "cuda" else 256
        if self.in_memory:
            x_all, y_all = (d.test_x, d.test_y) if limit is None else (d.test_x[:limit], d.test_y[:limit])
            for x, y in self.aug.iterate_batches(x_all, y_all, batch_size, shuffle=False):
                yield self._finish(x, False, None), y
            return
        test_set = d.test_set
        if limit is not None and limit < len(test_set):
            test_set = torch.utils.data.Subset(test_set, range(limit))
        loader = torch.utils.data.DataLoader(test_set, batch_size=batch_size, num_workers=min(4, os.cpu_count() or 1))
        for x, y in loader:
            yield self._finish(x, False, None), y.to(self.device, non_blocking=True)

    def example(self) -> Tensor:
        if self.in_memory:
            return self._finish(self.data.train_x[:2], False, None)
        x, _ = self.data.train_set[0]
        return self._finish(x.unsqueeze(0), False, None)


@torch.no_grad()
def evaluate(
    model: nn.Module | Callable[[Tensor], Tensor], batches: Iterator[tuple[Tensor, Tensor]], autocast: Any
) -> dict[str, float | None]:
    """Test loss, top-1 and top-5 error (top-5 only with more than 5 classes)."""
    if isinstance(model, nn.Module):  # a compiled or DDP-wrapped model is a module too
        model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64)
    wrong1 = wrong5 = n = 0
    for x, y in batches:
        with autocast():
            out = model(x)
        out = out.float()
        loss_sum += nn.functional.cross_entropy(out, y, reduction="sum").double().cpu()
        wrong1 += int((out.argmax(1) != y).sum())
        if out.shape[1] > 5:
            top5 = out.topk(5, dim=1).indices
            wrong5 += int((top5 != y[:, None]).all(1).sum())
        n += len(y)
    result: dict[str, float | None] = {"test_loss": float(loss_sum) / n, "test_error": 100.0 * wrong1 / n}
    result["test_top5_error"] = 100.0 * wrong5 / n if out.shape[1] > 5 else None
    return result


def _resume(
    checkpoints: Checkpoints | None,
    digest: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[int, list[dict[str, Any]], dict | None]:
    """Load the latest checkpoint into the model, optimizer and random generators.

    Returns:
        (epochs already done, their metric rows, the run's extras), or ``(0, [], None)`` without one.
    """
    path = checkpoints.latest() if checkpoints is not None else None
    if path is None:
        return 0, [], None
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # a damaged zip, a truncated pickle, not a torch file
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({first}); move it aside (mv {path} {path}.damaged) "
            "to train this run from the start, or restore it from a backup"
        ) from None
    if not isinstance(state, dict) or state.get("config_hash") != digest:
        held = state.get("config_hash") if isinstance(state, dict) else None
        raise CheckpointError(
            f"{path} belongs to a different configuration (hash {held}, this run {digest}); use "
            f"another run directory, or move the checkpoint aside (mv {path} {path}.other)"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"].cpu())
    torch.set_rng_state(state["torch_rng"].cpu())
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
    return state["epoch"], state["metrics"], state.get("extras")


def _checkpoint(
    checkpoints: Checkpoints | None,
    digest: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
    metrics: list[dict[str, Any]],
    extras: dict[str, Any],
    dist: Distributed,
    about: dict[str, Any],
) -> None:
    """Save the run after ``len(metrics)`` epochs (one process of a torchrun job writes; all wait for it).
    ``about`` (the run's config and its data's shape) makes the file enough to rebuild the model (ONNX export)."""
    if checkpoints is not None and dist.is_main:
        state = {
            "config_hash": digest,
            **about,
            "epoch": len(metrics),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "metrics": metrics,
            "extras": extras,
        }
        checkpoints.save(len(metrics), state, metrics[-1])
    dist.barrier()


def _first_nonfinite(losses: Tensor, dist: Distributed) -> int | None:
    """Index of the first non-finite loss (the mean over a torchrun job's processes), or None; one host sync."""
    (losses,) = dist.all_sum(losses)
    bad = ~torch.isfinite(losses)
    if not bool(bad.any()):
        return None
    return int(bad.nonzero()[0, 0])


def _check_finite(losses: Tensor, epoch: int, steps_per_epoch: int, dist: Distributed) -> None:
    i = _first_nonfinite(losses, dist)
    if i is not None:
        loss = float(dist.all_sum(losses[i : i + 1])[0]) / dist.world
        raise Diverged(epoch + 1, epoch * steps_per_epoch + i + 1, str(loss))


def train_one(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    *,
    data: Any = None,
    callbacks: list[EpochCallback] | None = None,
    reporter: Reporter | None = None,
    checkpoints: Checkpoints | None = None,
) -> RunResult:
    """Train one model and return its per-epoch metrics.

    Args:
        config: the run's configuration.
        run_dir: where ``checkpoint.pt`` is written after every epoch; when it already holds a
            checkpoint of the same config, training resumes from it. ``None``: no checkpoints.
        data: an already loaded dataset ([`rectlab.data.LoadedData`][rectlab.data.LoadedData]), to share one load
            between runs; loaded from ``config.dataset`` when omitted.
        callbacks: called after each epoch's evaluation with an [`EpochState`][rectlab.training.loop.EpochState]; probes
            use them to add metrics.
        reporter: progress hook called as ``reporter(event, **info)`` with events ``"epoch_start"``
            (epoch, steps), ``"step"``, ``"evaluated"`` (epoch; the test set is done) and ``"epoch_end"``
            (epoch, metrics; probes ran and the checkpoint is written).
        checkpoints: where checkpoints go (a [`Checkpoints`][rectlab.training.loop.Checkpoints]; studies pass one that
            commits each checkpoint with its epoch row); given, it replaces the default ``run_dir/checkpoint.pt``.

    Returns:
        A [`RunResult`][rectlab.training.loop.RunResult].

    Raises:
        Diverged: the training loss became NaN or infinite (the epochs before it stay checkpointed).
    """
    report = reporter or (lambda event, **info: None)
    dist = Distributed.current()
    device = resolve_device(config.device)
    if data is None:
        data = rdata.load(config.dataset, data_dir=config.data_dir)
    use_bf16 = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
    channels_last = config.channels_last == "on" or (config.channels_last == "auto" and device.type == "cuda")

    def autocast() -> Any:
        if use_bf16:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    torch.manual_seed(config.seed)
    batches = _Batches(data, config, device, channels_last, dist)
    model, extras = build_model(config, data.num_classes, data.in_channels, batches.example())
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(config, model)
    # The wrappers share parameters with `model`; checkpoints keep the plain state_dict.
    wrapped: nn.Module = torch.nn.parallel.DistributedDataParallel(model) if dist.world > 1 else model
    forward = compiled_forward(wrapped, config, device)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    graph = CudaGraph(device) if use_cuda_graphs(config, device, dist.world) else None
    step = TrainStep(forward, criterion, optimizer, torch.bfloat16 if use_bf16 else None, device, graph)
    generator = torch.Generator().manual_seed(config.seed + 1)
    steps_per_epoch = batches.steps_per_epoch()
    total_steps = steps_per_epoch * config.epochs
    digest = config_hash(config)
    if checkpoints is None and run_dir is not None:
        checkpoints = RunDirCheckpoints(run_dir)
    start_epoch, metrics, saved_extras = _resume(checkpoints, digest, model, optimizer, generator, device)
    extras = saved_extras if saved_extras is not None else extras
    if config.prune_sparsity and start_epoch >= config.prune_epoch:
        pruning.restore_(model)  # the checkpoint holds the pruned weights as zeros
    about = {
        "config": config.to_dict(),
        "data": {"num_classes": data.num_classes, "in_channels": data.in_channels, "image_size": list(data.image_size)},
    }

    for epoch in range(start_epoch, config.epochs):
        report("epoch_start", epoch=epoch + 1, steps=steps_per_epoch)
        model.train()
        t0 = time.perf_counter()
        # Accumulated on the device: no host sync per step.
        losses = torch.zeros(steps_per_epoch, device=device, dtype=torch.float64)
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        wrong = torch.zeros((), device=device, dtype=torch.int64)
        seen = 0
        lr = config.lr
        for i, (x, y) in enumerate(batches.train_batches(generator)):
            lr = _lr_at(config, epoch * steps_per_epoch + i, total_steps, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            out, loss = step(x, y)
            losses[i] = loss.detach()
            loss_sum += loss.detach().double() * len(y)
            wrong += (out.detach().argmax(1) != y).sum()
            seen += len(y)
            if (i + 1) % DIVERGENCE_CHECK_EVERY == 0:
                _check_finite(losses[: i + 1], epoch, steps_per_epoch, dist)
            report("step")
        _check_finite(losses, epoch, steps_per_epoch, dist)
        total_loss, total_wrong, total_seen = (
            float(v) for v in dist.all_sum(loss_sum, wrong, torch.tensor(seen, device=device))
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - t0
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": total_loss / total_seen,
            "train_error": 100.0 * total_wrong / total_seen,
            # the epochs before the last draw the test-error curve on a subset; the last uses the whole test set
            **evaluate(
                forward, batches.test_batches(None if epoch + 1 == config.epochs else config.curve_test_limit), autocast
            ),
            "seconds": train_seconds,
        }
        report("evaluated", epoch=epoch + 1)
        if config.prune_sparsity and epoch + 1 >= config.prune_epoch:  # probes below see the pruned net
            row["sparsity"] = (
                pruning.prune_(model, config.prune_sparsity)
                if epoch + 1 == config.prune_epoch
                else pruning.sparsity(model)
            )
        if dist.is_main:
            for callback in callbacks or ():
                callback(EpochState(epoch + 1, model, row, config, data, device, extras))
        metrics.append(row)
        _checkpoint(checkpoints, digest, model, optimizer, generator, device, metrics, extras, dist, about)
        report("epoch_end", epoch=epoch + 1, metrics=row)

    extras["slopes"] = learned_slopes(model)
    return RunResult(config, metrics, extras, describe_device(device), resumed_from_epoch=start_epoch)
