"""Studies of the user's own training function (rectlab.Study, function specs, Trial): the same store, resume,
lock, digest, outcomes and report as built-in studies, and a SIGKILL mid-study that resumes to the rows of an
uninterrupted run (examples/own_loop.py on digits)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import own_functions
import rectlab
from rectlab.cli.main import main as cli
from rectlab.study import Store, StudyLock, StudyLocked, StudyMismatch, load_spec, parse_spec
from rectlab.study.function import FunctionConfig, FunctionError, function_reference, resolve_function
from rectlab.study.runner import StoreCheckpoints
from rectlab.study.spec import SpecError
from rectlab.study.trial import Trial, TrialDiverged, TrialError
from study_helpers import CHILD_ENV, ROOT

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLES = ROOT / "examples"


def rows(out: Path, key: str = "activation") -> dict:
    """``{(cell value, seed): [epoch rows without seconds]}`` of a study directory."""
    return {
        (r["cell"][key], r["seed"]): [{k: v for k, v in e.items() if k != "seconds"} for e in r["epochs"]]
        for r in Store(out / "results.db").runs()
    }


# -- function references ----------------------------------------------------------------------------------------


def test_function_references_and_their_errors(tmp_path) -> None:
    assert function_reference(own_functions.tiny) == "own_functions:tiny"
    assert resolve_function("own_functions:tiny") is own_functions.tiny
    with pytest.raises(FunctionError, match="lambda cannot be imported .* top level of an importable module"):
        function_reference(lambda trial: None)

    def nested(trial):
        return None

    with pytest.raises(FunctionError, match="inside another function"):
        function_reference(nested)
    nested.__module__, nested.__qualname__ = "__main__", "train"
    with pytest.raises(FunctionError, match=r"defined in __main__ .* \(from my_script import train\)"):
        function_reference(nested)
    with pytest.raises(FunctionError, match="not an import path"):
        function_reference("own_functions.tiny")
    with pytest.raises(FunctionError, match="no module named 'nowhere_xyz'"):
        resolve_function("nowhere_xyz:train")
    with pytest.raises(FunctionError, match="has no 'nope'"):
        resolve_function("own_functions:nope")
    file = tmp_path / "from_file.py"
    file.write_text("def train(trial):\n    return {'test_error': 1.0}\n")
    reference = function_reference(f"{file}:train")
    assert reference == f"{file.resolve()}:train" and resolve_function(reference)(None) == {"test_error": 1.0}


def test_a_module_in_the_current_folder_is_found_as_python_m_would(tmp_path, monkeypatch) -> None:
    (tmp_path / "cwd_train_module.py").write_text("def train(trial):\n    return {'test_error': 1.0}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])  # as the rectlab command
    assert resolve_function("cwd_train_module:train")(None) == {"test_error": 1.0}
    assert sys.path[0] == str(tmp_path)  # worker processes inherit it


# -- specs --------------------------------------------------------------------------------------------------------


def test_the_example_spec_names_the_example_function() -> None:
    spec = load_spec(EXAMPLES / "own_loop.toml", scale="smoke")
    assert spec.base.function == "own_loop:train" and spec.seeds == (0, 1)
    assert spec.base.params == {"dataset": "digits", "epochs": 2}


SPEC = """
[study]
seeds = 2
baseline = { activation = "relu" }
metric = "test_error"

[base]
function = "own_functions:tiny"
epochs = 3
device = "cpu"

[grid]
activation = ["relu", "elu"]
"""


def test_function_spec_digest_is_the_import_path_and_the_grid() -> None:
    spec = parse_spec(SPEC)
    assert isinstance(spec.base, FunctionConfig) and spec.base.params == {"epochs": 3}
    assert spec.identity()["base"] == {"function": "own_functions:tiny", "epochs": 3}
    assert parse_spec(SPEC.replace('device = "cpu"', 'device = "auto"')).digest == spec.digest  # execution only
    others = [
        SPEC.replace("own_functions:tiny", "own_functions:scores"),
        SPEC.replace('"elu"]', '"gelu"]'),
        SPEC.replace("epochs = 3", "epochs = 4"),
    ]
    assert len({spec.digest, *(parse_spec(s).digest for s in others)}) == 4
    # A parameter named like a TrainConfig execution field is still a parameter: in the hash and the digest.
    compiled = parse_spec(SPEC.replace("epochs = 3", "epochs = 3\ncompile = true"))
    assert compiled.digest != spec.digest and compiled.base.params["compile"] is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('activation = ["relu", "elu"]', "seed = [1, 2]"), r"line 1[0-9]\).*cannot vary 'seed'.*\[study\] seeds"),
        (('device = "cpu"', 'device = "tpu"'), r"line 1[0-9]\).*device='tpu' is not valid"),
        (('function = "own_functions:tiny"', 'function = "own_functions.tiny"'), "not an import path"),
        (('metric = "test_error"', 'metric = "test_error"\ngoal = "best"'), "goal must be"),
        (('metric = "test_error"', 'metric = "test_error"\nprobes = ["dnr"]'), "probes run inside rectlab's own"),
    ],
)
def test_function_spec_errors_name_the_line_and_the_fix(change, message) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(SPEC.replace(*change), where="s.toml")


def test_goal_max_is_for_function_studies_only() -> None:
    builtin = '[study]\ngoal = "max"\n[base]\nmodel = "mlp"\ndataset = "digits"\n[grid]\nactivation = ["relu"]\n'
    with pytest.raises(SpecError, match="lower-is-better"):
        parse_spec(builtin)
    assert parse_spec(SPEC.replace('metric = "test_error"', 'metric = "acc"\ngoal = "max"')).goal == "max"


# -- the trial ----------------------------------------------------------------------------------------------------


def make_trial(tmp_path: Path) -> tuple[Trial, Store]:
    config = FunctionConfig("own_functions:tiny", {"epochs": 3})
    store = Store(tmp_path / "results.db")
    store.start_run(config.hash, "s", {}, 0, config.to_dict(), {})
    run_dir = tmp_path / "runs" / config.hash
    trial = Trial(
        config,
        run_hash=config.hash,
        run_dir=run_dir,
        store=store,
        checkpoints=StoreCheckpoints(store, config.hash, run_dir),
        device=torch.device("cpu"),
    )
    return trial, store


def test_trial_commits_rows_with_each_save_and_checks_epochs(tmp_path) -> None:
    trial, store = make_trial(tmp_path)
    with pytest.raises(TrialError, match="epoch must be an integer >= 1"):
        trial.log(0, loss=1.0)
    with pytest.raises(TrialError, match="before any trial.log"):
        trial.save({})
    trial.log(1, train_loss=torch.tensor(2.0))
    trial.log(1, test_error=50.0)  # the same epoch: one row
    trial.log(2, train_loss=1.0, test_error=40.0)
    assert Store(tmp_path / "results.db").runs()[0]["epochs"] == []  # nothing committed before a save
    trial.save({"w": torch.ones(2)})
    epochs = store.runs()[0]["epochs"]
    assert [(e["epoch"], e["train_loss"], e["test_error"]) for e in epochs] == [(1, 2.0, 50.0), (2, 1.0, 40.0)]
    assert store.checkpoint_epoch(trial.hash) == 2
    with pytest.raises(TrialError, match="already recorded"):
        trial.log(2, x=1.0)
    with pytest.raises(TrialError, match="tensor of shape"):
        trial.log(3, x=torch.ones(2))
    with pytest.raises(TrialDiverged, match="train_loss became nan in epoch 3"):
        trial.log(3, train_loss=float("nan"))


def test_a_new_trial_resumes_from_the_last_save_with_the_random_generators(tmp_path) -> None:
    trial, store = make_trial(tmp_path)
    trial.log(1, loss=1.0)
    torch.manual_seed(3)
    trial.save({"epoch": 1})
    expected = torch.rand(3)
    trial.log(2, loss=0.5)  # logged, never saved: lost with the process
    again, _ = make_trial(tmp_path)
    assert again.start_epoch == 1 and again.load() == {"epoch": 1}
    assert torch.equal(torch.rand(3), expected)  # the generators continue from the save
    assert [e["epoch"] for e in store.runs()[0]["epochs"]] == [1]
    # A function that does not call load() starts afresh: its first log forgets the saved epochs.
    fresh, _ = make_trial(tmp_path)
    fresh.log(1, loss=9.0)
    assert store.checkpoint_epoch(fresh.hash) == 0 and store.runs()[0]["epochs"] == []


def test_model_hook_swaps_activations_erases_and_initializes(tmp_path) -> None:
    trial, _ = make_trial(tmp_path)
    trial.params.update(activation="prelu", init="he")
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    hooked = trial.model_hook(net, example_input=torch.randn(2, 4))
    assert any(isinstance(m, rectlab.activations.PReLU) for m in hooked.modules())
    assert [g["layer"] for g in trial.extras["init_gains"]] == ["0", "2"]
    trial.params.update(activation="relu", init="orthogonal")
    with pytest.raises(TrialError, match="init='orthogonal' is not valid"):
        trial.model_hook(nn.Sequential(nn.Linear(4, 8), nn.ReLU()))


# -- studies ------------------------------------------------------------------------------------------------------


def test_study_records_outcomes_and_refuses_another_function(tmp_path) -> None:
    study = rectlab.Study(
        tmp_path / "s", grid={"activation": ["relu", "elu"]}, seeds=2, params={"epochs": 2}, device="cpu"
    )
    result = study.run(own_functions.tiny, progress=False)
    assert {r["status"] for r in Store(tmp_path / "s" / "results.db").runs()} == {"done"}
    assert len(result.cells) == 2 and result.cells[1].comparison is not None
    frame = result.frame()
    assert {"activation", "seed", "status", "test_error", "epochs", "function"} <= set(frame.columns)
    assert list(result.comparisons["cell"]) == ["elu"]
    assert study.pending(own_functions.tiny) == 0
    with pytest.raises(StudyMismatch, match="function"):
        study.run(own_functions.scores, progress=False)
    with StudyLock(tmp_path / "s"), pytest.raises(StudyLocked, match="in use by another rectlab process"):
        study.run(own_functions.tiny, progress=False)
    for case, function in [
        ("nan", own_functions.diverging),
        ("bug", own_functions.failing),
        ("list", "own_functions:returns_a_list"),
    ]:
        one = rectlab.Study(tmp_path / case, grid={"case": [case]}, seeds=1, device="cpu")
        one.run(function, progress=False)
    statuses = {case: Store(tmp_path / case / "results.db").runs()[0] for case in ("nan", "bug", "list")}
    assert statuses["nan"]["status"] == "diverged"
    assert statuses["nan"]["extras"]["diverged"] == {"epoch": 2, "loss": "nan", "metric": "train_loss"}
    assert [e["epoch"] for e in statuses["nan"]["epochs"]] == [1]  # the saved epoch stays
    assert statuses["bug"]["status"] == "failed" and "ValueError: a bug in the user's code" in statuses["bug"]["error"]
    assert statuses["list"]["status"] == "failed" and "return a dict of final metrics" in statuses["list"]["error"]


def test_a_crash_between_saves_resumes_to_the_uninterrupted_rows(tmp_path, monkeypatch) -> None:
    grid, params = {"activation": ["relu", "elu"]}, {"epochs": 4, "save_every": 2}
    reference = rectlab.Study(tmp_path / "ref", grid=grid, seeds=2, params=params, device="cpu")
    reference.run(own_functions.tiny, progress=False)
    crashed = rectlab.Study(tmp_path / "crash", grid=grid, seeds=2, params=params, device="cpu")
    monkeypatch.setenv("OWN_CRASH_AFTER", "3")  # epochs 1-2 saved together, epoch 3 logged and lost
    crashed.run(own_functions.tiny, progress=False)
    runs = Store(tmp_path / "crash" / "results.db").runs()
    assert {r["status"] for r in runs} == {"failed"} and {len(r["epochs"]) for r in runs} == {2}
    result = crashed.run(own_functions.tiny, retry_failed=True, progress=False)
    assert rows(tmp_path / "crash") == rows(tmp_path / "ref")
    assert result.comparisons["estimate"].tolist() == reference.results().comparisons["estimate"].tolist()


def test_rectlab_run_takes_a_function_spec(tmp_path, capsys) -> None:
    spec = tmp_path / "own.toml"
    spec.write_text(SPEC.replace("epochs = 3", "epochs = 2").replace("seeds = 2", "seeds = 3"))
    assert cli(["run", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"elu (is better than|is worse than|vs) relu", out)
    assert (tmp_path / "out" / "report.html").is_file()
    assert cli(["run", str(spec), "--out", str(tmp_path / "out"), "--tensorboard", "--no-progress"]) == 2
    assert "a function study logs to TensorBoard from the function" in capsys.readouterr().err


# -- SIGKILL mid-study, two workers ---------------------------------------------------------------------------------


def committed_rows(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILLs a process group")
def test_own_loop_example_survives_sigkill_and_resumes_to_the_uninterrupted_rows(tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import own_loop

    args = ["--dataset", "digits", "--activations", "relu,elu", "--seeds", "2", "--epochs", "6", "--device", "cpu"]
    params = {"dataset": "digits", "epochs": 6, "train_limit": None}
    reference = rectlab.Study(
        tmp_path / "ref", grid={"activation": ["relu", "elu"]}, seeds=2, params=params, device="cpu"
    )
    reference.run(own_loop.train, progress=False)  # uninterrupted, in this process
    out = tmp_path / "killed"
    env = {**CHILD_ENV, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{EXAMPLES}"}
    command = [sys.executable, str(EXAMPLES / "own_loop.py"), *args, "--out", str(out)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 180
    while committed_rows(out / "results.db") < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the study and both workers, at once
    proc.communicate()
    killed = Store(out / "results.db").runs()
    done = sum(len(r["epochs"]) for r in killed)
    assert proc.returncode == -signal.SIGKILL and 0 < done < 4 * 6, done
    with sqlite3.connect(out / "results.db") as con:
        committed = dict(con.execute("SELECT hash, checkpoint_epoch FROM runs").fetchall())
    for run in killed:  # the rows are exactly those of the last save, which the checkpoint holds
        assert [e["epoch"] for e in run["epochs"]] == list(range(1, committed[run["hash"]] + 1))
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert rows(out) == rows(tmp_path / "ref")
    # two seeds per cell: the table without a test, and the report
    assert "too small to compare" in finished.stdout and (out / "report.html").is_file()
    assert {r["status"] for r in Store(out / "results.db").runs()} == {"done"}
