"""Study results as pandas DataFrames (rectlab.report.to_frame), `rectlab export --csv|--parquet`, and the
per-layer study plots of rectlab.report.plots, on one small study with the dead-neuron and slope probes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from rectlab.cli.main import main
from rectlab.report import plots as plot
from rectlab.report import to_frame
from rectlab.study import Store, parse_spec, run_study

pd = pytest.importorskip("pandas")

SPEC = """
[study]
name = "frame-test"
seeds = 2
probes = ["dead-neurons", "slopes"]
[base]
model = "mlp"
dataset = "digits"
epochs = 2
batch_size = 64
train_limit = 256
test_limit = 128
device = "cpu"
model_kwargs = { hidden = [64, 32] }
[grid]
activation = ["relu", "prelu"]
lr = [0.05, 0.1]
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("frame") / "study"
    run_study(parse_spec(SPEC), out, progress=False)
    return out


def test_one_row_per_run_with_config_and_final_metrics(study):
    df = to_frame(study)
    runs = Store(study / "results.db").runs()
    assert len(df) == len(runs) == 8
    assert {
        "study",
        "hash",
        "cell",
        "seed",
        "status",
        "activation",
        "lr",
        "model",
        "model_kwargs.hidden",
        "test_error",
        "train_loss",
        "epoch_lr",
        "epochs_done",
        "dnr",
        "train_seconds",
    } <= set(df.columns)
    assert set(df["status"]) == {"done"} and set(df["epochs_done"]) == {2}
    by_hash = {r["hash"]: r for r in runs}
    for row in df.itertuples():
        assert row.test_error == by_hash[row.hash]["epochs"][-1]["test_error"]
        assert row.lr == by_hash[row.hash]["config"]["lr"]
    table = df.groupby(["activation", "lr"])["test_error"].agg(["mean", "count"])
    assert list(table["count"]) == [2, 2, 2, 2]
    assert df.loc[df.activation == "prelu", "cell"].iloc[0].startswith("activation=prelu, lr=")


def test_one_row_per_epoch(study):
    df = to_frame(study, per="epoch")
    assert len(df) == 8 * 2 and sorted(set(df["epoch"])) == [1, 2]
    curve = df[(df.activation == "relu") & (df.lr == 0.05) & (df.seed == 0)].sort_values("epoch")
    run = next(r for r in Store(study / "results.db").runs() if r["hash"] == curve["hash"].iloc[0])
    assert list(curve["train_loss"]) == [e["train_loss"] for e in run["epochs"]]
    assert any(c.startswith("slope/") for c in df.columns) and any(c.startswith("dnr/") for c in df.columns)
    with pytest.raises(ValueError, match="per must be one of run, epoch"):
        to_frame(study, per="cell")


def test_a_reproduction_folder_reads_every_part(study, tmp_path):
    parent = tmp_path / "repro"
    for part in ("a", "b"):
        shutil.copytree(study, parent / part)
    df = to_frame(parent)
    assert sorted(set(df["dir"])) == ["a", "b"] and len(df) == 16
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no results.db"):
        to_frame(tmp_path / "empty")


def test_xor_reproduction_gives_its_success_table(tmp_path):
    result = {
        "setup": {"trials": 10, "epochs": 5, "lrs": [0.1, 1.0], "inputs": "bipolar"},
        "success": {"prelu": [10, 7]},
        "median_loss": {"prelu": [0.01, 0.2]},
        "n_params": {"prelu": 3},
    }
    (tmp_path / "xor.json").write_text(json.dumps(result))
    df = to_frame(tmp_path)
    assert list(df["success_rate"]) == [1.0, 0.7] and list(df["lr"]) == [0.1, 1.0]


def test_export_csv_and_parquet(study, tmp_path, capsys):
    assert main(["export", str(study), "--csv", str(tmp_path / "runs.csv")]) == 0
    csv = pd.read_csv(tmp_path / "runs.csv")
    assert len(csv) == 8 and csv["test_error"].tolist() == to_frame(study)["test_error"].tolist()
    pytest.importorskip("pyarrow")
    assert main(["export", str(study), "--parquet", "--per", "epoch"]) == 0
    epochs = pd.read_parquet(study / "results-epochs.parquet")
    assert len(epochs) == 16 and "wrote" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "nothing"), "--csv"]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_missing_pandas_says_how_to_install(study, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'rectlab\[frames\]'"):
        to_frame(study)


def test_slope_and_dead_neuron_plots_of_a_study(study, tmp_path):
    assert plot.slopes(study).name == "slopes_per_layer.png"
    assert (study / "plots" / "slopes_per_layer.png").stat().st_size > 1000
    assert plot.slopes(study, tmp_path / "s.svg", over_training=True).stat().st_size > 1000
    assert plot.dead_neurons(study, tmp_path / "d.png", dynamic=True).stat().st_size > 1000
