"""One run of the user's own training function: the `Trial` it receives, and `run_trial`.

The function is called as ``train(trial)`` and returns a dict of final metrics. Before the call the trial's
seed is applied to Python's ``random``, NumPy and torch. The function reports epochs with
``trial.log(epoch, **metrics)`` and makes its state durable with ``trial.save(state)``; a later process
(after a crash, a SIGKILL, Ctrl-C) gets that state back from ``trial.load()`` and continues from there.

Exactly-once epochs, as for rectlab's own loop: rows logged since the last save are held in memory, and
``trial.save`` writes the checkpoint, then commits those rows together with "this run is checkpointed at
epoch e" in one SQLite transaction (`rectlab.study.runner.StoreCheckpoints`, the same code path as a
built-in run). A process killed at any point leaves the rows of the last save and its checkpoint; the next
process resumes from them and recomputes the epochs after it. ``trial.save`` also stores the state of the
global random generators (Python, NumPy, torch, CUDA) and ``trial.load`` restores it, so a loop whose
randomness comes from them resumes to the rows an uninterrupted run gives (on CPU, bit for bit).

A logged value whose name contains ``loss`` that is NaN or infinite stops the trial as diverged (an
outcome, recorded with the epoch); so does the function raising `rectlab.training.Diverged`. Any other
exception marks the run failed with its traceback, and the study goes on.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from .. import init as rinit
from .. import surgery
from ..errors import RectlabError
from ..training.config import INITS
from ..training.loop import Diverged, describe_device, resolve_device
from .function import FunctionConfig, resolve_function
from .store import Store

__all__ = ["MODEL_HOOK_KEYS", "Trial", "TrialDiverged", "TrialError", "TrialResult", "run_trial"]

# The parameters trial.model_hook applies (the same meaning as in rectlab's own run configuration).
MODEL_HOOK_KEYS = ("activation", "activation_kwargs", "erase_relu", "erase_location", "init")


class TrialError(RectlabError, RuntimeError):
    """The training function used its trial wrongly (an epoch logged twice, a save before any log, ...)."""


class TrialDiverged(Diverged):
    """A logged loss became NaN or infinite: the trial stops and is recorded as diverged (an outcome)."""

    def __init__(self, epoch: int, key: str, value: float) -> None:
        FloatingPointError.__init__(
            self, f"{key} became {value} in epoch {epoch}; lower the learning rate or use warmup"
        )
        self.epoch, self.loss, self.key = epoch, str(value), key
        self.step: int | None = None  # type: ignore[assignment]  # a trial knows its epochs, not its steps

    def as_dict(self) -> dict[str, Any]:
        """``{"epoch", "loss", "metric"}``: what a study stores as ``extras["diverged"]``."""
        return {"epoch": self.epoch, "loss": self.loss, "metric": self.key}


class _Checkpoints(Protocol):
    """What a trial needs of `rectlab.study.runner.StoreCheckpoints`."""

    def latest(self) -> Path | None: ...

    def save(
        self, epoch: int, state: dict[str, Any], row: dict[str, Any], earlier: Sequence[dict[str, Any]] = ()
    ) -> None: ...


def _plain(key: str, value: Any) -> Any:
    """A metric as a plain JSON value: numbers (one-element tensors and NumPy scalars too), strings, None."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TrialError(f"metric {key} is a tensor of shape {tuple(value.shape)}; log one number (.item())")
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TrialError(f"metric {key}={value!r} ({type(value).__name__}): log numbers, one-element tensors or strings")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # and every CUDA device


def _rng_state(device: torch.device) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class Trial:
    """What the user's training function receives: this run's parameters, seed and device, and its record.

    Attributes:
        params: this grid cell's values and the study's shared parameters (``{"activation": "prelu", ...}``).
        seed: the run's seed, already applied to Python's ``random``, NumPy and torch.
        device: the ``torch.device`` to train on (the study's ``device``; ``auto`` picks CUDA when present).
        data_dir: the study's ``data_dir`` (``--data-dir``), or None.
        run_dir: a folder of this run's own (its checkpoint lives there; the function may write files too).
        hash: the run's hash (the key of its row in ``results.db``).
        label: the grid cell, in words (``"prelu"``, ``"activation=prelu, lr=0.1"``).
        start_epoch: the epoch the state of `load` completes (0 for a fresh run).
        extras: end-of-run information stored with the run (`model_hook` records what it did here).
    """

    def __init__(
        self,
        config: FunctionConfig,
        *,
        run_hash: str,
        run_dir: Path,
        store: Store,
        checkpoints: _Checkpoints,
        device: torch.device,
        label: str = "",
        reporter: Callable[..., None] | None = None,
    ) -> None:
        self.params: dict[str, Any] = dict(config.params)
        self.seed, self.device, self.data_dir = config.seed, device, config.data_dir
        self.run_dir, self.hash, self.label = Path(run_dir), run_hash, label
        self.extras: dict[str, Any] = {}
        self._store, self._checkpoints, self._reporter = store, checkpoints, reporter
        # Rewinds the store to the last committed checkpoint and removes what a killed process left half-done.
        self._path = checkpoints.latest()
        self._committed = store.checkpoint_epoch(run_hash) if self._path is not None else 0
        self._from_before = self._path is not None  # committed epochs of an earlier process, not yet loaded
        self._start = self._committed
        self._payload: dict[str, Any] | None = None
        self._pending: list[dict[str, Any]] = []
        self._last_row: dict[str, Any] | None = None
        self._clock = time.perf_counter()

    def __repr__(self) -> str:
        return f"Trial({self.label or self.params}, seed={self.seed}, device={self.device})"

    @property
    def start_epoch(self) -> int:
        return self._start

    def load(self) -> Any:
        """The state of the last `save` of this run (by this or an earlier process), or None for a fresh run.

        The first call also restores the random generators (Python, NumPy, torch, CUDA) to where they were at
        that save, so the epochs after it draw what an uninterrupted run would have drawn.
        """
        self._clock = time.perf_counter()  # the first epoch's seconds count from here, after the set-up
        if self._path is None:
            self._from_before = False
            return None
        if self._payload is None:
            payload = torch.load(self._path, map_location=self.device, weights_only=False)
            if payload.get("config_hash") != self.hash:
                raise TrialError(
                    f"{self._path} belongs to another run (hash {payload.get('config_hash')}, this run "
                    f"{self.hash}); delete it to start this run afresh"
                )
            _set_rng_state(payload["rng"])
            self._payload, self._last_row = payload, payload.get("row")
        self._from_before = False
        return self._payload["state"]

    def log(self, epoch: int, **metrics: Any) -> None:
        """Record ``metrics`` as the row of ``epoch`` (1 = the first epoch done); committed at the next `save`.

        Several calls with the same epoch add to one row. A row holds ``seconds`` (the wall time since the
        previous epoch's first log) unless given.

        Raises:
            TrialDiverged: a value whose name contains ``loss`` is NaN or infinite (the run is recorded as
                diverged; nothing after the last save is kept).
            TrialError: an epoch below 1, below the previous one, or already committed.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise TrialError(
                f"trial.log(epoch, ...): epoch must be an integer >= 1 (the number of epochs done; in a "
                f"loop from 0 log epoch + 1), got {epoch!r}"
            )
        if epoch <= self._committed:
            if not self._from_before:
                raise TrialError(
                    f"trial.log: epoch {epoch} is already recorded (up to epoch {self._committed}); a "
                    f"run resumed with trial.load() continues from epoch {self._committed + 1}"
                )
            self._restart()  # the function did not call trial.load(): it trains from scratch
        last = self._pending[-1]["epoch"] if self._pending else self._committed
        if epoch < last:
            raise TrialError(f"trial.log: epoch {epoch} after epoch {last}; epochs must not decrease")
        values = {str(k): _plain(k, v) for k, v in metrics.items()}
        if self._pending and self._pending[-1]["epoch"] == epoch:
            row = self._pending[-1]
            row.update(values)
        else:
            now = time.perf_counter()
            row = {"epoch": epoch, **values}
            row.setdefault("seconds", now - self._clock)
            self._clock = now
            self._pending.append(row)
        for key, value in values.items():
            if "loss" in key and isinstance(value, float) and not math.isfinite(value):
                raise TrialDiverged(epoch, key, value)
        if self._reporter is not None:
            self._reporter("epoch_end", epoch=epoch, metrics=dict(row))

    def save(self, state: Any) -> None:
        """Make ``state`` (anything ``torch.save`` takes: state dicts, epoch counters ...) durable, and commit the
        rows logged since the last save with it. Call it after logging the epoch the state completes.

        Raises:
            TrialError: nothing has been logged yet (the checkpoint would belong to no epoch).
        """
        rows = self._pending
        row = rows[-1] if rows else self._last_row
        if row is None:
            raise TrialError(
                "trial.save() before any trial.log(): log the epoch this state completes first, e.g. "
                "trial.log(epoch, loss=...) then trial.save({...})"
            )
        epoch = int(row["epoch"])
        payload = {"config_hash": self.hash, "epoch": epoch, "state": state, "row": row, "rng": _rng_state(self.device)}
        self._checkpoints.save(epoch, payload, row, rows[:-1])
        self._committed, self._last_row, self._pending, self._from_before = epoch, row, [], False

    def model_hook(self, model: nn.Module, example_input: Any = None) -> nn.Module:
        """Apply this cell's activation, EraseReLU and initialization to the user's model (in place).

        Reads ``params``: ``activation`` (a registered name: every activation call site is swapped to it, with
        ``activation_kwargs``), ``erase_relu`` (a proportion of basic modules whose ``erase_location`` site,
        default ``"last"``, becomes the identity: Dong et al. 2017) and ``init`` (``he``, ``he-fan-out``,
        ``xavier``, ``xavier-fan-in``: He et al. 2015, Glorot & Bengio 2010), as rectlab's own runs do. Keys that
        are absent change nothing.

        Args:
            model: the model; new modules are put on the device of its first parameter.
            example_input: a batch shaped like the input; needed for per-channel activations (``prelu``) and
                for models torch.fx cannot trace.

        Returns:
            The model to train (use it: a model whose forward calls activation functions becomes a new
            ``GraphModule``).
        """
        p = self.params
        first = next(iter(model.parameters()), None)
        activation = p.get("activation")
        if activation is not None:
            model = surgery.swap_activations(
                model, activation, example_input=example_input, inplace=True, **dict(p.get("activation_kwargs") or {})
            )
        proportion = float(p.get("erase_relu") or 0.0)
        if proportion > 0:
            model, report = surgery.erase_relu(
                model,
                location=p.get("erase_location", "last"),
                proportion=proportion,
                seed=self.seed,
                example_input=example_input,
                match=activation,
                inplace=True,
            )
            self.extras["erased_sites"] = [str(s) for s in report.erased]
        init = p.get("init", "default")
        if init in ("he", "he-fan-out"):
            _, plan = rinit.he_init_(
                model,
                mode="fan_out" if init == "he-fan-out" else "fan_in",
                example_input=example_input,
                return_report=True,
            )
            self.extras["init_gains"] = [
                {"layer": q.layer, "activation": q.activation, "gain": q.gain, "fan": q.fan} for q in plan
            ]
        elif init in ("xavier", "xavier-fan-in"):
            rinit.xavier_init_(model, mode="fan_in" if init == "xavier-fan-in" else "glorot")
        elif init != "default":
            raise TrialError(f"init={init!r} is not valid; choose one of: {', '.join(INITS)}")
        if first is not None:
            model = model.to(first.device)
        return model

    # -- used by run_trial ----------------------------------------------------------------------------------------
    def _restart(self) -> None:
        self._store.rewind(self.hash, 0)
        if self._path is not None:
            self._path.unlink(missing_ok=True)
        self._path, self._committed, self._start, self._from_before = None, 0, 0, False

    def _finish(self, returned: Any) -> dict[str, Any]:
        """The final metrics (the returned dict, or the last logged row); rows logged after the last save are
        recorded without a checkpoint (a process killed before the run is marked done redoes them)."""
        if returned is None:
            last = self._pending[-1] if self._pending else (self._last_row or {})
            final = {k: v for k, v in last.items() if k not in ("epoch", "seconds")}
        elif isinstance(returned, Mapping):
            final = {str(k): _plain(str(k), v) for k, v in returned.items()}
        else:
            raise TrialError(
                f"the training function returned a {type(returned).__name__}; return a dict of final "
                "metrics, or None to use the last logged epoch"
            )
        for row in self._pending:
            self._store.add_epoch(self.hash, row)
        self._pending = []
        return final


@dataclass
class TrialResult:
    """What `run_trial` returns: the final metrics, the extras to store (with ``final``) and the device."""

    final: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)
    device: str = ""


def run_trial(
    config: FunctionConfig,
    run_hash: str,
    run_dir: Path,
    store: Store,
    checkpoints: _Checkpoints,
    *,
    label: str = "",
    reporter: Callable[..., None] | None = None,
) -> TrialResult:
    """Call the user's function on a new `Trial` (seeded) and return what it produced.

    The caller (`rectlab.study.runner.execute_run`) has marked the run started and records its end:
    done, diverged (`rectlab.training.Diverged`), failed (any other exception) or interrupted.
    """
    function = resolve_function(config.function)
    device = resolve_device(config.device)
    _seed_everything(config.seed)
    trial = Trial(
        config,
        run_hash=run_hash,
        run_dir=run_dir,
        store=store,
        checkpoints=checkpoints,
        device=device,
        label=label,
        reporter=reporter,
    )
    final = trial._finish(function(trial))
    return TrialResult(final, {**trial.extras, "final": final}, describe_device(device))
