"""Magnitude pruning during training, as a study executor (for the ``dead-neurons`` reproduction).

Each run trains densely for ``prune_epoch`` epochs, is then pruned once by global magnitude (L1, unstructured)
over every conv and linear weight to the target sparsity with ``torch.nn.utils.prune``, and keeps training with
the masks fixed: one-shot magnitude pruning followed by fine-tuning, the setting where Liu et al. 2022
(arXiv 2212.06145) measure the dynamic dead neuron rate. The masks are forward pre-hooks, so the optimizer keeps
updating the same (masked) parameters.

Sparsity is not a :class:`rectlab.config.TrainConfig` field, so the executor stores it in the run's cell
(``{"sparsity": s, ...}``) and in the recorded config, and derives the run hash from both. Runs are trained
without epoch checkpoints (a pruned model's state dict differs from the dense one): an interrupted run restarts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["global_magnitude_prune", "prune_callback", "run_pruning_study"]


def global_magnitude_prune(model: nn.Module, sparsity: float) -> float:
    """Prune ``sparsity`` of all conv/linear weights by global L1 magnitude; return the achieved sparsity."""
    from torch.nn.utils import prune

    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    params = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    if not params:
        raise ValueError(f"{type(model).__name__} has no conv or linear layer to prune")
    if sparsity > 0:
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in params)
    return zeros / sum(m.weight.numel() for m, _ in params)


def prune_callback(sparsity: float, at_epoch: int) -> Callable[[Any], None]:
    """An epoch callback pruning the model at the end of epoch ``at_epoch`` and recording ``sparsity`` every epoch."""

    def callback(state: Any) -> None:
        if state.epoch == at_epoch and sparsity > 0:
            state.extras["pruned_at_epoch"] = at_epoch
            state.metrics["sparsity"] = global_magnitude_prune(state.model, sparsity)
        else:
            weights = [m.weight for m in state.model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
            state.metrics["sparsity"] = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)

    return callback


def _run_hash(config_digest: str, sparsity: float, at_epoch: int) -> str:
    return hashlib.sha256(f"{config_digest}|prune={sparsity}@{at_epoch}".encode()).hexdigest()[:16]


def run_pruning_study(spec: Any, out_dir: str | Path, *, device: str | None = None, data_dir: str | None = None,
                      progress: bool = True, console: Any = None, **_: Any) -> None:
    """Run ``spec``'s grid x seeds x ``[study.reproduce] sparsities``, pruning after ``prune_epoch``.

    Results go to ``out_dir/results.db`` like any study (cells carry ``sparsity``), so
    :func:`rectlab.report.collect` and :func:`rectlab.report.write_report` work unchanged; the baseline is
    sparsity 0 (dense). Finished runs are skipped on a re-run.

    Raises:
        ValueError: for missing or invalid ``sparsities`` / ``prune_epoch``.
    """
    from .. import data as rdata
    from .. import probes
    from ..config import config_hash
    from ..study import Store
    from ..study.grid import cells
    from ..train import resolve_device, train_one, versions

    opts = dict(spec.extra.get("reproduce", {}))
    sparsities = [float(s) for s in opts.get("sparsities", [])]
    at_epoch = int(opts.get("prune_epoch", 1))
    if not sparsities or any(not 0 <= s < 1 for s in sparsities):
        raise ValueError(f"{spec.name}: [study.reproduce] sparsities must list values in [0, 1), got {sparsities}")
    if not 1 <= at_epoch < spec.base.epochs:
        raise ValueError(f"{spec.name}: prune_epoch must be in [1, epochs - 1] = [1, {spec.base.epochs - 1}] so "
                         f"that the pruned net trains afterwards, got {at_epoch}")
    overrides = {k: v for k, v in (("device", device), ("data_dir", data_dir)) if v is not None}
    out_dir = Path(out_dir)
    store = Store(out_dir / "results.db")
    saved = spec.to_dict()
    saved["grid"] = {**saved["grid"], "sparsity": sparsities}
    saved["study"]["baseline"] = {"sparsity": 0.0} if 0.0 in sparsities else {"sparsity": sparsities[0]}
    store.save_spec(spec.name, saved)
    probe_callbacks = probes.epoch_callbacks(spec.extra.get("probes", []))
    todo = []
    for seed in spec.seeds:
        for cell in cells(spec):
            config = spec.base.replace(**cell.as_dict(), seed=seed, **overrides)
            for s in sparsities:
                run_hash = _run_hash(config_hash(config), s, at_epoch)
                if store.status(run_hash) != "done":
                    todo.append((run_hash, {**cell.as_dict(), "sparsity": s}, seed, config, s))
    loaded: dict[tuple[str, str | None], Any] = {}
    from rich.progress import Progress

    with Progress(console=console, disable=not progress) as bars:
        task = bars.add_task("pruned runs", total=len(todo))
        for run_hash, cell, seed, config, s in todo:
            key = (config.dataset, config.data_dir)
            if key not in loaded:
                loaded[key] = rdata.load(config.dataset, data_dir=config.data_dir)
            store.start_run(run_hash, spec.name, cell, seed, {**config.to_dict(), "prune_sparsity": s,
                                                              "prune_epoch": at_epoch},
                            versions(resolve_device(config.device)))

            def report(event: str, _hash: str = run_hash, **info: Any) -> None:
                if event == "epoch_end":
                    store.add_epoch(_hash, info["metrics"])

            try:
                # the pruning callback runs first so that the probes of that epoch see the pruned net
                result = train_one(config, None, data=loaded[key],
                                   callbacks=[prune_callback(s, at_epoch), *probe_callbacks], reporter=report)
            except KeyboardInterrupt:
                store.finish_run(run_hash, "interrupted", error="interrupted; re-run to train it again")
                raise
            except Exception as e:  # a failed run must not lose the rest of the study
                store.finish_run(run_hash, "failed", error=f"{type(e).__name__}: {e}")
            else:
                store.finish_run(run_hash, "done", extras=result.extras, device=result.device)
            bars.advance(task)
