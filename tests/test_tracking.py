"""TensorBoard tracking: what train_one's epoch callback and `--tensorboard` write, read back from the event files."""

from __future__ import annotations

from pathlib import Path

import pytest

from rectlab.training.config import TrainConfig
from rectlab.training.loop import train_one

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from rectlab.training.tracking import TensorBoardLogger, run_label  # noqa: E402

CFG = TrainConfig(
    model="mlp",
    activation="prelu",
    dataset="digits",
    epochs=2,
    batch_size=64,
    train_limit=256,
    test_limit=128,
    device="cpu",
    augment=False,
)


def events(log_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_epoch_metrics_slope_histograms_and_dead_neurons(tmp_path):
    result = train_one(CFG, callbacks=[TensorBoardLogger(tmp_path / "tb")])
    acc = events(tmp_path / "tb")
    scalars = set(acc.Tags()["scalars"])
    train_loss = acc.Scalars("loss/train")
    assert [e.step for e in train_loss] == [1, 2]
    assert [e.value for e in train_loss] == pytest.approx([m["train_loss"] for m in result.metrics])
    assert [e.value for e in acc.Scalars("error/test")] == pytest.approx([m["test_error"] for m in result.metrics])
    assert {"optim/lr", "time/seconds_per_epoch", "dead_neurons/rate", "dead_neurons/dynamic_rate"} <= scalars

    layers = [row["layer"] for row in result.extras["slopes"]]
    assert layers and set(acc.Tags()["histograms"]) >= {f"prelu_slope/{layer}" for layer in layers}
    last = acc.Histograms(f"prelu_slope/{layers[0]}")[-1]
    assert last.step == 2
    assert last.histogram_value.num == result.extras["slopes"][0]["num_parameters"]  # one value per channel
    assert last.histogram_value.sum == pytest.approx(
        result.extras["slopes"][0]["mean"] * last.histogram_value.num, rel=1e-4
    )
    for e in acc.Scalars("dead_neurons/rate"):
        assert 0.0 <= e.value <= 1.0
    assert any(t.startswith("dead_neurons_per_site/") for t in scalars)


def test_compare_tensorboard_writes_one_run_per_cell_and_seed(tmp_path, capsys):
    from rectlab.cli.main import main

    out = tmp_path / "study"
    rc = main(
        [
            "compare",
            "--activations",
            "relu,prelu",
            "--model",
            "mlp",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--train-limit",
            "128",
            "--test-limit",
            "64",
            "--seeds",
            "1",
            "--device",
            "cpu",
            "--no-progress",
            "--tensorboard",
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr()
    runs = sorted(p.name for p in (out / "tensorboard").iterdir())
    assert runs == ["prelu-seed0", "relu-seed0"]
    assert [e.step for e in events(out / "tensorboard" / "prelu-seed0").Scalars("error/test")] == [1]
    assert events(out / "tensorboard" / "relu-seed0").Tags()["histograms"]  # the dead-neuron rates per site
    assert run_label("activation=prelu, lr=0.01", 3) == "activation=prelu_lr=0.01-seed3"


def test_unknown_tracker_fails_before_training(tmp_path):
    from rectlab.study import parse_spec, run_study

    spec = parse_spec('[base]\nmodel = "mlp"\ndataset = "digits"\n[grid]\nactivation = ["relu"]\n')
    with pytest.raises(ValueError, match="unknown tracker.*'wandb'.*known: tensorboard, mlflow"):
        run_study(spec, tmp_path, trackers=["wandb"])
    assert not (tmp_path / "runs").exists()


def test_train_logs_tensorboard_mlflow_and_csv_and_resumes_them(tmp_path, capsys):
    """`rectlab train --out` with both trackers: one TensorBoard run, one MLflow run (file store, offline) with the
    config as parameters, and metrics.csv; a longer re-run resumes all three without repeating an epoch."""
    pytest.importorskip("mlflow")
    import csv

    from mlflow.tracking import MlflowClient

    from rectlab.cli.main import main

    out = tmp_path / "one"
    argv = [
        "train",
        "--model",
        "mlp",
        "--model-kwargs",
        "hidden=32",
        "--activation",
        "smelu:beta=0.5",
        "--dataset",
        "digits",
        "--batch-size",
        "64",
        "--train-limit",
        "256",
        "--test-limit",
        "128",
        "--device",
        "cpu",
        "--tensorboard",
        "--mlflow",
        "--out",
        str(out),
    ]
    assert main([*argv, "--epochs", "2"]) == 0
    assert "metrics.csv, tensorboard logs, mlflow logs" in capsys.readouterr().out
    assert [e.step for e in events(out / "tensorboard" / "mlp-smelu_beta=0.5-seed0").Scalars("error/test")] == [1, 2]
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[1]["test_error"]) >= 0
    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "train one"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["activation"] == "smelu:beta=0.5" and run.data.params["model_kwargs"] == '{"hidden": 32}'
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_error")] == [1, 2]


def test_compare_mlflow_one_run_per_cell_and_seed(tmp_path, capsys):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from rectlab.cli.main import main

    out = tmp_path / "study"
    assert (
        main(
            [
                "compare",
                "--activations",
                "relu,prelu",
                "--model",
                "mlp",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "--batch-size",
                "64",
                "--train-limit",
                "128",
                "--test-limit",
                "64",
                "--seeds",
                "1",
                "--device",
                "cpu",
                "--no-progress",
                "--mlflow",
                "--name",
                "tiny",
                "--executor",
                "local",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "tiny"]
    names = sorted(r.info.run_name for r in client.search_runs([experiment.experiment_id]))
    assert names == ["prelu-seed0", "relu-seed0"]
