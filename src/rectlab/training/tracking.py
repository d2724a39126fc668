"""Experiment trackers as epoch callbacks of [`rectlab.training.loop.train_one`][rectlab.training.loop.train_one]:
TensorBoard, MLflow and a CSV log, all offline.

``rectlab compare ... --tensorboard`` (also ``run``, ``reproduce``, ``search`` and ``train --out``) writes one
TensorBoard run per study run into ``OUT/tensorboard/<cell>-seed<N>/``; look at them with
``tensorboard --logdir OUT/tensorboard``. ``--mlflow`` logs the same runs to an MLflow file store in
``OUT/mlruns`` (one experiment per study, one MLflow run per study run, named ``<cell>-seed<N>``, with the
run's config as parameters); look at them with ``mlflow ui --backend-store-uri OUT/mlruns``. Every run also
writes ``metrics.csv`` (one row per epoch) into its own folder (``OUT/runs/<hash>/``, or the ``--out`` of
``rectlab train``). From Python, each is an epoch callback::

    from rectlab.training.tracking import CSVLogger, MLflowLogger, TensorBoardLogger
    train_one(config, callbacks=[TensorBoardLogger("tb/prelu-seed0"), MLflowLogger("mlruns", "my-study", "prelu"),
                                 CSVLogger("prelu-metrics.csv")])

Per epoch it logs every scalar metric of the epoch row (losses, errors, learning rate, seconds and whatever
probes added), the learned activation parameters of every layer as histograms (PReLU slopes, Swish betas;
He et al. 2015, Table 1) with their means as scalars, and the dead neuron rates (whole network and per
activation site; Liu et al. 2022's dynamic rate too), measured with
[`rectlab.probes.DeadNeurons`][rectlab.probes.DeadNeurons] on the first training examples unless the run's own
``dead-neurons`` probe already did. Runs that are resumed continue their event files, MLflow runs and CSV files. Any
other tracker (W&B, ...) is a callable taking an [`EpochState`][rectlab.training.loop.EpochState]: pass it in
``callbacks``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, MissingPackageError
from ..probes import DeadNeurons, probe_batches, probe_sites, slope_table

__all__ = ["TRACKERS", "CSVLogger", "MLflowLogger", "TensorBoardLogger", "callbacks", "check_trackers", "run_label"]

TRACKERS = ("tensorboard", "mlflow")

# Epoch-row keys -> TensorBoard tags: grouped as loss/, error/ and time/ panels.
_TAGS = {
    "train_loss": "loss/train",
    "test_loss": "loss/test",
    "train_error": "error/train",
    "test_error": "error/test",
    "test_top5_error": "error/test_top5",
    "seconds": "time/seconds_per_epoch",
    "lr": "optim/lr",
}


def _summary_writer() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional: pip install 'rectlab[tracking]'
    except ImportError:
        raise MissingPackageError(
            "--tensorboard needs the tensorboard package: pip install 'rectlab[tracking]'"
        ) from None
    return SummaryWriter


def _mlflow_client() -> Any:
    try:
        from mlflow.tracking import MlflowClient  # optional: mlflow-skinny is enough
    except ImportError:
        raise ImportError("--mlflow needs MLflow: pip install 'rectlab[mlflow]' (mlflow-skinny)") from None
    return MlflowClient


def check_trackers(names: Sequence[str]) -> list[str]:
    """Validate tracker names (and that their package is installed) before any run starts."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise InputError(f"unknown tracker(s) {', '.join(map(repr, unknown))}; known: {', '.join(TRACKERS)}")
    if "tensorboard" in names:
        _summary_writer()
    if "mlflow" in names:
        _mlflow_client()
    return names


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of an epoch row (not the epoch itself)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


class CSVLogger:
    """Epoch callback writing one row per epoch to ``path`` (columns: ``epoch`` and every metric seen).

    A resumed run keeps the rows of the epochs before the one it restarts from, so the file always holds each
    epoch once.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __call__(self, state: Any) -> None:
        rows: list[dict[str, Any]] = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("epoch", "").isdigit() and int(r["epoch"]) < state.epoch]
        rows.append(
            {
                "epoch": state.epoch,
                **{k: v for k, v in state.metrics.items() if k != "epoch" and isinstance(v, (int, float, str))},
            }
        )
        columns = list(dict.fromkeys(k for r in rows for k in r))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)


def _mlflow_key(key: str) -> str:
    """MLflow keys allow letters, digits, ``_ - . / `` and spaces: ``dnr/layers.0.act#2`` -> ``dnr/layers.0.act_2``."""
    return re.sub(r"[^\w./ -]", "_", key)


class MLflowLogger:
    """Epoch callback logging to an MLflow tracking store in the folder ``tracking_dir`` (offline, no server).

    Args:
        tracking_dir: the store's folder (``OUT/mlruns``).
        experiment: the MLflow experiment (the study's name); created when missing.
        run_name: the MLflow run's name (``<cell>-seed<N>``); a resumed run continues the MLflow run of that name.

    Per epoch it logs every scalar metric of the epoch row with the epoch as step, and the mean learned PReLU
    slope / Swish beta per layer; the run's config is logged once as parameters, and the MLflow run ends with
    the last epoch.
    """

    def __init__(self, tracking_dir: str | Path, experiment: str, run_name: str) -> None:
        self.tracking_dir = Path(tracking_dir)
        self.experiment = experiment
        self.run_name = run_name
        self._client: Any = None
        self._run_id: str | None = None

    def __getstate__(self) -> dict[str, Any]:  # picklable for worker processes: the client is opened there
        return {**self.__dict__, "_client": None, "_run_id": None}

    def _start(self, state: Any) -> tuple[Any, str]:
        if self._client is None:
            # MLflow 3 keeps its file store (the one that needs no database) behind this switch.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            self.tracking_dir.mkdir(parents=True, exist_ok=True)
            self._client = _mlflow_client()(tracking_uri=self.tracking_dir.resolve().as_uri())
        client = self._client
        if self._run_id is None:
            experiment = client.get_experiment_by_name(self.experiment)
            if experiment is None:
                try:
                    experiment_id = client.create_experiment(self.experiment)
                except Exception:  # another worker process created it meanwhile
                    experiment_id = client.get_experiment_by_name(self.experiment).experiment_id
            else:
                experiment_id = experiment.experiment_id
            quoted = self.run_name.replace("'", "\\'")
            found = client.search_runs(
                [experiment_id], filter_string=f"tags.`mlflow.runName` = '{quoted}'", max_results=1
            )
            if found:
                self._run_id = found[0].info.run_id
            else:
                run = client.create_run(experiment_id, run_name=self.run_name)
                self._run_id = run.info.run_id
                params = {
                    k: json.dumps(v) if isinstance(v, (list, dict, tuple)) else str(v)
                    for k, v in state.config.to_dict().items()
                }
                for key, value in params.items():
                    client.log_param(self._run_id, key, value[:500])
        return client, self._run_id

    def __call__(self, state: Any) -> None:
        client, run_id = self._start(state)
        for key, value in _scalars(state.metrics).items():
            client.log_metric(run_id, _mlflow_key(key), value, step=state.epoch)
        for row in slope_table(state.model):
            name = "prelu_slope_mean" if row["kind"] == "prelu" else "swish_beta_mean"
            client.log_metric(run_id, _mlflow_key(f"{name}/{row['layer']}"), row["mean"], step=state.epoch)
        if state.epoch >= state.config.epochs:
            client.set_terminated(run_id)


class TensorBoardLogger:
    """Epoch callback writing TensorBoard event files into ``log_dir`` (see the module docstring).

    Args:
        log_dir: the run's folder of event files.
        dead_neurons: measure the dead neuron rates when no ``dead-neurons`` probe did.
        probe_limit: training examples per dead-neuron pass.
    """

    def __init__(self, log_dir: str | Path, *, dead_neurons: bool = True, probe_limit: int = 512) -> None:
        self.log_dir = Path(log_dir)
        self.dead_neurons = dead_neurons
        self.probe_limit = probe_limit
        self._writer: Any = None

    def __getstate__(self) -> dict[str, Any]:  # picklable for worker processes: the writer is opened there
        return {**self.__dict__, "_writer": None}

    def writer(self) -> Any:
        if self._writer is None:
            self._writer = _summary_writer()(log_dir=str(self.log_dir))
        return self._writer

    def __call__(self, state: Any) -> None:
        w = self.writer()
        step = state.epoch
        if step == 1:
            w.add_text("config", "```\n" + json.dumps(state.config.to_dict(), indent=1, default=str) + "\n```", 0)
        for key, value in state.metrics.items():
            if (
                key != "epoch"
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                w.add_scalar(_TAGS.get(key, key), value, step)
        self._slopes(w, state.model, step)
        if self.dead_neurons and "dnr" not in state.metrics:
            self._dead_neurons(w, state, step)
        w.flush()
        if state.epoch >= state.config.epochs:
            self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @staticmethod
    def _slopes(w: Any, model: torch.nn.Module, step: int) -> None:
        for row in slope_table(model, values=True):
            name = "prelu_slope" if row["kind"] == "prelu" else "swish_beta"
            w.add_histogram(f"{name}/{row['layer']}", torch.tensor(row["values"]), step)
            w.add_scalar(f"{name}_mean/{row['layer']}", row["mean"], step)

    def _dead_neurons(self, w: Any, state: Any, step: int) -> None:
        if not probe_sites(state.model):
            return
        model = state.model
        was_training = model.training
        model.eval()
        try:
            with DeadNeurons(model) as probe, torch.no_grad():
                for x in probe_batches(state.data, state.config, state.device, self.probe_limit):
                    model(x)
        finally:
            model.train(was_training)
        summary = probe.summary()
        w.add_scalar("dead_neurons/rate", summary["dead_rate"], step)
        w.add_scalar("dead_neurons/dynamic_rate", summary["dynamic_rate"], step)
        rows = list(probe.result().values())
        for r in rows:
            w.add_scalar(f"dead_neurons_per_site/{r.site}", r.dead_rate, step)
        if rows:
            w.add_histogram("dead_neurons/per_site_rate", torch.tensor([r.dead_rate for r in rows]), step)


def run_label(cell_label: str, seed: int) -> str:
    """A folder name for one study run: ``prelu-seed0``, ``activation=prelu_lr=0.01-seed1``."""
    text = re.sub(r"[^A-Za-z0-9.=+-]+", "_", cell_label.replace(", ", "_")).strip("_") or "run"
    return f"{text}-seed{seed}"


def callbacks(
    names: Sequence[str],
    out_dir: str | Path,
    cell_label: str,
    seed: int,
    *,
    run_dir: str | Path | None = None,
    experiment: str = "rectlab",
) -> list[Any]:
    """The epoch callbacks of the trackers ``names`` for one run whose study (or ``train --out``) folder is
    ``out_dir``: TensorBoard in ``out_dir/tensorboard/<label>``, MLflow in ``out_dir/mlruns`` (experiment
    ``experiment``, run ``<label>``), and, given ``run_dir``, the CSV log ``run_dir/metrics.csv``."""
    label = run_label(cell_label, seed)
    out: list[Any] = []
    for name in check_trackers(names):
        if name == "tensorboard":
            out.append(TensorBoardLogger(Path(out_dir) / "tensorboard" / label))
        elif name == "mlflow":
            out.append(MLflowLogger(Path(out_dir) / "mlruns", experiment, label))
    if run_dir is not None:
        out.append(CSVLogger(Path(run_dir) / "metrics.csv"))
    return out
