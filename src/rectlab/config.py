"""Run configuration: a frozen dataclass that rejects unknown keys and bad values with a fix-it message."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfigError", "TrainConfig", "from_dict", "config_hash"]


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message says what is valid."""


def _choice(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {', '.join(map(str, allowed))}")


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run. Unknown keys are rejected by :func:`from_dict`.

    Attributes (grouped):
        model, activation, activation_kwargs, model_kwargs, head: what is trained
            (names from ``rectlab list models|activations``).
        dataset, data_dir, train_limit, test_limit, augment: the data; ``*_limit`` take the first
            n examples (a fixed, seed-independent subset) for quick runs.
        epochs, batch_size, optimizer ("sgd" | "adamw"), lr, momentum, nesterov, weight_decay,
            schedule ("cosine" | "step" | "constant"), warmup_epochs, step_milestones (fractions of
            training), step_gamma, label_smoothing: the optimisation.
        decay_activation_params: weight-decay PReLU slopes / Swish beta too (He et al. 2015 do not).
        init: "default" (the model's own; rectlab's models use He init), "he" (fan_in), "he-fan-out",
            "xavier" (Glorot: 2 / (fan_in + fan_out)) or "xavier-fan-in" (1 / fan_in: He et al. 2015's "Xavier").
        erase_relu, erase_location: EraseReLU proportion of basic modules (0 = off) and location.
        prune_sparsity, prune_epoch: after epoch ``prune_epoch``, prune this fraction of all conv/linear
            weights by global magnitude and train on with fixed masks (0 = off; see :mod:`rectlab.pruning`).
        seed: seeds weights, data order, augmentation and stochastic activations.
        device ("auto" | "cpu" | "cuda" | "cuda:N"), amp ("auto" | "bf16" | "off"),
        channels_last ("auto" | "on" | "off"), backend ("auto" | "torch" | "triton"), compile
            (``torch.compile`` the model for training): execution; they do not change the config hash.
    """

    model: str = "small-cnn"
    activation: str = "relu"
    activation_kwargs: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    head: str = "linear"
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    augment: bool = True
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    step_milestones: tuple[float, ...] = (0.5, 0.75)
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    decay_activation_params: bool = False
    init: str = "default"
    erase_relu: float = 0.0
    erase_location: str = "last"
    prune_sparsity: float = 0.0
    prune_epoch: int = 0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    channels_last: str = "auto"
    backend: str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        _choice("optimizer", self.optimizer, ("sgd", "adamw"))
        _choice("schedule", self.schedule, ("cosine", "step", "constant"))
        _choice("init", self.init, ("default", "he", "he-fan-out", "xavier", "xavier-fan-in"))
        _choice("amp", self.amp, ("auto", "bf16", "off"))
        _choice("channels_last", self.channels_last, ("auto", "on", "off"))
        _choice("backend", self.backend, ("auto", "torch", "triton"))
        _choice("head", self.head, ("linear", "relu-classifier", "relu-normalized"))
        if not (self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:")):
            raise ConfigError(f"device={self.device!r} is not valid; use auto, cpu, cuda or cuda:N")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        _positive("lr", self.lr)
        _positive("weight_decay", self.weight_decay, allow_zero=True)
        _positive("warmup_epochs", self.warmup_epochs, allow_zero=True)
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not 0 <= self.erase_relu <= 1:
            raise ConfigError(f"erase_relu is a proportion of basic modules in [0, 1], got {self.erase_relu!r}")
        if not 0 <= self.prune_sparsity < 1:
            raise ConfigError(f"prune_sparsity is a fraction of weights in [0, 1), got {self.prune_sparsity!r}")
        if self.prune_sparsity > 0 and not 1 <= self.prune_epoch < self.epochs:
            raise ConfigError(f"prune_epoch must be in [1, epochs - 1] = [1, {self.epochs - 1}] so that the pruned "
                              f"net trains afterwards, got {self.prune_epoch!r}")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or omitted, got {value!r}")
        if any(not 0 < m < 1 for m in self.step_milestones):
            raise ConfigError(f"step_milestones are fractions of training in (0, 1), got {self.step_milestones!r}")
        if not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        # Names are checked against the registries lazily by the trainer, which imports them.

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["step_milestones"] = list(self.step_milestones)
        return d

    def replace(self, **changes: Any) -> TrainConfig:
        return from_dict({**self.to_dict(), **changes})


# Fields that say where/how a run executes but not what it computes.
EXECUTION_FIELDS = ("device", "data_dir", "backend", "compile")
# Fields added after runs were first stored: left out of the hash at their default (off) value, so that
# existing results.db files keep their run hashes.
LATER_FIELDS = {"prune_sparsity": 0.0, "prune_epoch": 0}


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def unknown_key_message(key: str, valid: list[str], where: str = "config") -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r} in {where}.{hint} Valid keys: {', '.join(valid)}"


def from_dict(d: dict[str, Any], where: str = "config") -> TrainConfig:
    """Build a :class:`TrainConfig`, rejecting unknown keys with the list of valid ones."""
    valid = field_names()
    for key in d:
        if key not in valid:
            raise ConfigError(unknown_key_message(key, valid, where))
    d = dict(d)
    if "step_milestones" in d:
        d["step_milestones"] = tuple(d["step_milestones"])
    for key in ("activation_kwargs", "model_kwargs"):
        if key in d and not isinstance(d[key], dict):
            raise ConfigError(f"{key} must be a table/dict of keyword arguments, got {d[key]!r}")
    return TrainConfig(**d)


def config_hash(config: TrainConfig) -> str:
    """Stable 16-hex-digit hash of what a run computes (execution fields excluded)."""
    d = {k: v for k, v in config.to_dict().items()
         if k not in EXECUTION_FIELDS and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
    blob = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
