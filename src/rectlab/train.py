"""One training run, top to bottom: ``train_one(config, run_dir) -> RunResult``.

The loop follows nanoGPT's habit of reading in one function. Small datasets live on the training
device as uint8 tensors and are normalized and augmented in batches (airbench style); large ones go
through a DataLoader. Every epoch ends with an atomic checkpoint, so an interrupted run resumes where
it stopped and, on CPU, finishes with exactly the metrics of an uninterrupted run.
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
from typing import Any

import torch
from torch import Tensor, nn

from . import __version__
from .config import TrainConfig, config_hash

__all__ = ["RunResult", "train_one", "resolve_device", "build_model", "evaluate", "learned_slopes", "versions"]

Reporter = Callable[..., None]
EpochCallback = Callable[["EpochState"], None]


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
    """``auto`` picks CUDA when available; asking for CUDA without one is an error, not a fallback."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={spec!r} was requested but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(spec)


def build_model(config: TrainConfig, num_classes: int, in_channels: int, example: Tensor) -> tuple[nn.Module, dict]:
    """Create the model, apply transforms (EraseReLU) and initialization; return it with a report."""
    from . import activations, models, surgery
    from . import init as rinit

    make_act = activations.factory(config.activation, backend=config.backend, **config.activation_kwargs)
    kwargs = dict(config.model_kwargs)
    if config.head != "linear":
        kwargs["head"] = config.head
    model = models.create(
        config.model, activation=make_act, num_classes=num_classes, in_channels=in_channels, **kwargs
    )
    report: dict[str, Any] = {}
    if config.erase_relu > 0:
        model, erased = surgery.erase_relu(
            model, location=config.erase_location, proportion=config.erase_relu, seed=config.seed,
            example_input=example, match=config.activation,
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


def learned_slopes(model: nn.Module) -> list[dict[str, Any]]:
    """Learned activation parameters per layer (He et al. 2015, Table 1): PReLU slopes and Swish betas."""
    from .activations import PReLU, Swish

    rows = []
    for name, module in model.named_modules():
        if isinstance(module, (PReLU, nn.PReLU)):
            values = module.weight.detach().float().cpu()
            kind = "prelu"
        elif isinstance(module, Swish) and module.learnable:
            values = module.beta.detach().float().cpu()
            kind = "swish-beta"
        else:
            continue
        rows.append(
            {
                "layer": name,
                "kind": kind,
                "num_parameters": values.numel(),
                "mean": float(values.mean()),
                "std": float(values.std()) if values.numel() > 1 else 0.0,
                "min": float(values.min()),
                "max": float(values.max()),
            }
        )
    return rows


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
    from .optim import param_groups

    groups = param_groups(model, config.weight_decay)
    if config.decay_activation_params:  # ablation of He et al. 2015: decay the slopes like any weight
        for group in groups:
            group["weight_decay"] = config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    return torch.optim.AdamW(groups, lr=config.lr)


class _Batches:
    """Training/evaluation batches from in-memory tensors (on the device) or a DataLoader.

    In-memory batches are augmented as uint8 (random crop + flip in one gather) and then normalized,
    all on the training device. Randomness comes from one CPU generator, so a seed gives the same
    data order and crops on every device, and its state is all a checkpoint needs.
    """

    def __init__(self, data: Any, config: TrainConfig, device: torch.device, channels_last: bool) -> None:
        from .data import augment

        self.aug = augment
        self.config, self.device, self.channels_last = config, device, channels_last
        self.data = data.limit(train=config.train_limit, test=config.test_limit).to(device)
        self.in_memory = self.data.in_memory
        self.n_train = self.data.num_train

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
        d, bs = self.data, self.config.batch_size
        if self.in_memory:
            batches = self.aug.iterate_batches(d.train_x, d.train_y, bs, shuffle=True, generator=generator,
                                               drop_last=self.n_train > bs)
            for x, y in batches:
                yield self._finish(x, True, generator), y
            return
        loader = torch.utils.data.DataLoader(
            d.train_set, batch_size=bs, shuffle=True, drop_last=self.n_train > bs,
            generator=torch.Generator().manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator))),
            num_workers=min(4, os.cpu_count() or 1), pin_memory=self.device.type == "cuda",
        )
        for x, y in loader:
            yield self._finish(x, True, None), y.to(self.device, non_blocking=True)

    def test_batches(self, batch_size: int = 1024) -> Iterator[tuple[Tensor, Tensor]]:
        d = self.data
        if self.in_memory:
            for x, y in self.aug.iterate_batches(d.test_x, d.test_y, batch_size, shuffle=False):
                yield self._finish(x, False, None), y
            return
        loader = torch.utils.data.DataLoader(d.test_set, batch_size=batch_size, num_workers=min(4, os.cpu_count() or 1))
        for x, y in loader:
            yield self._finish(x, False, None), y.to(self.device, non_blocking=True)

    def example(self) -> Tensor:
        if self.in_memory:
            return self._finish(self.data.train_x[:2], False, None)
        x, _ = self.data.train_set[0]
        return self._finish(x.unsqueeze(0), False, None)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterator[tuple[Tensor, Tensor]], autocast: Any) -> dict[str, float]:
    """Test loss, top-1 and top-5 error (top-5 only with more than 5 classes)."""
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
    result = {"test_loss": float(loss_sum) / n, "test_error": 100.0 * wrong1 / n}
    result["test_top5_error"] = 100.0 * wrong5 / n if out.shape[1] > 5 else None
    return result


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_one(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    *,
    data: Any = None,
    callbacks: list[EpochCallback] | None = None,
    reporter: Reporter | None = None,
) -> RunResult:
    """Train one model and return its per-epoch metrics.

    Args:
        config: the run's configuration.
        run_dir: where ``checkpoint.pt`` is written after every epoch; when it already holds a
            checkpoint of the same config, training resumes from it. ``None``: no checkpoints.
        data: an already loaded dataset (:class:`rectlab.data.LoadedData`), to share one load
            between runs; loaded from ``config.dataset`` when omitted.
        callbacks: called after each epoch's evaluation with an :class:`EpochState`; probes use
            them to add metrics.
        reporter: progress hook called as ``reporter(event, **info)`` with events ``"epoch_start"``
            (epoch, steps), ``"step"`` and ``"epoch_end"`` (epoch, metrics).

    Returns:
        A :class:`RunResult`.
    """
    from . import data as rdata
    from . import pruning

    report = reporter or (lambda event, **info: None)
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
    batches = _Batches(data, config, device, channels_last)
    model, extras = build_model(config, data.num_classes, data.in_channels, batches.example())
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(config, model)
    # The compiled wrapper shares parameters with `model`; checkpoints keep the plain state_dict.
    forward = torch.compile(model) if config.compile else model
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    generator = torch.Generator().manual_seed(config.seed + 1)

    steps_per_epoch = batches.steps_per_epoch()
    total_steps = steps_per_epoch * config.epochs
    metrics: list[dict[str, Any]] = []
    start_epoch = 0
    digest = config_hash(config)
    ckpt_path = Path(run_dir) / "checkpoint.pt" if run_dir is not None else None
    if ckpt_path is not None:
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        if ckpt_path.exists():
            state = torch.load(ckpt_path, map_location=device, weights_only=False)
            if state.get("config_hash") != digest:
                raise RuntimeError(
                    f"{ckpt_path} belongs to a different configuration (hash {state.get('config_hash')}, "
                    f"this run {digest}); use another run directory or delete the checkpoint"
                )
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"].cpu())
            torch.set_rng_state(state["torch_rng"].cpu())
            if device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
            metrics = state["metrics"]
            extras = state.get("extras", extras)
            start_epoch = state["epoch"]
            if config.prune_sparsity and start_epoch >= config.prune_epoch:
                pruning.restore_(model)  # the checkpoint holds the pruned weights as zeros

    for epoch in range(start_epoch, config.epochs):
        report("epoch_start", epoch=epoch + 1, steps=steps_per_epoch)
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        wrong = torch.zeros((), device=device, dtype=torch.int64)
        seen = 0
        lr = config.lr
        for i, (x, y) in enumerate(batches.train_batches(generator)):
            lr = _lr_at(config, epoch * steps_per_epoch + i, total_steps, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast():
                out = forward(x)
                loss = criterion(out.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # Accumulate on the device: no host sync per step.
            loss_sum += loss.detach().double() * len(y)
            wrong += (out.detach().argmax(1) != y).sum()
            seen += len(y)
            report("step")
        train_loss = float(loss_sum) / seen
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training diverged in epoch {epoch + 1} (train loss {train_loss}); lower --lr or use warmup"
            )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - t0
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": train_loss,
            "train_error": 100.0 * float(wrong) / seen,
            **evaluate(forward, batches.test_batches(), autocast),
            "seconds": train_seconds,
        }
        if config.prune_sparsity and epoch + 1 >= config.prune_epoch:  # probes below see the pruned net
            row["sparsity"] = (pruning.prune_(model, config.prune_sparsity) if epoch + 1 == config.prune_epoch
                               else pruning.sparsity(model))
        for callback in callbacks or ():
            callback(EpochState(epoch + 1, model, row, config, data, device, extras))
        metrics.append(row)
        if ckpt_path is not None:
            _atomic_save(
                {
                    "config_hash": digest,
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "metrics": metrics,
                    "extras": extras,
                },
                ckpt_path,
            )
        report("epoch_end", epoch=epoch + 1, metrics=row)

    extras["slopes"] = learned_slopes(model)
    return RunResult(config, metrics, extras, describe_device(device), resumed_from_epoch=start_epoch)
