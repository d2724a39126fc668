"""The Lightning and Hugging Face callbacks: each example runs through rectlab.Study on digits, offline on the CPU,
and a run that crashes after a checkpoint resumes from it to the rows of an uninterrupted run."""

from __future__ import annotations

import pytest

import rectlab
from rectlab.study import Store
from study_helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

GRID = {"activation": ["relu", "gelu"]}


def rows(out) -> dict:
    return {
        (r["cell"]["activation"], r["seed"]): [{k: v for k, v in e.items() if k != "seconds"} for e in r["epochs"]]
        for r in Store(out / "results.db").runs()
    }


def crash_after_save(train, saves: int):
    """``train`` made to crash once per run right after its ``saves``-th ``trial.save``."""

    def crashing(trial):
        marker = trial.run_dir / "crashed"
        if not marker.exists():
            save, count = trial.save, [0]

            def save_then_crash(state):
                save(state)
                count[0] += 1
                if count[0] == saves:
                    marker.touch()
                    raise RuntimeError("simulated crash")

            trial.save = save_then_crash
        return train(trial)

    return crashing


def lightning_crashing(trial):
    import lightning_loop

    return crash_after_save(lightning_loop.train, 1)(trial)


def huggingface_crashing(trial):
    import huggingface_loop

    return crash_after_save(huggingface_loop.train, 1)(trial)


@pytest.fixture
def examples(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))


@pytest.mark.parametrize(
    ("module", "metric", "crashing"),
    [
        ("lightning_loop", "val_error", "test_integrations:lightning_crashing"),
        ("huggingface_loop", "eval_error", "test_integrations:huggingface_crashing"),
    ],
)
def test_example_runs_and_resumes_after_a_crash(module, metric, crashing, examples, tmp_path) -> None:
    pytest.importorskip("lightning" if module == "lightning_loop" else "accelerate")
    example = __import__(module)
    params = {"dataset": "digits", "epochs": 2}
    reference = rectlab.Study(tmp_path / "ref", grid=GRID, seeds=1, metric=metric, params=params, device="cpu")
    result = reference.run(example.train, progress=False)
    runs = Store(tmp_path / "ref" / "results.db").runs()
    assert {r["status"] for r in runs} == {"done"}, [r["error"] for r in runs]
    assert all([e["epoch"] for e in r["epochs"]] == [1, 2] and metric in r["epochs"][-1] for r in runs)
    assert list(result.comparisons["cell"]) == ["gelu"] and result.cells[0].summary.n == 1
    crashed = rectlab.Study(tmp_path / "crash", grid=GRID, seeds=1, metric=metric, params=params, device="cpu")
    crashed.run(crashing, progress=False)
    runs = Store(tmp_path / "crash" / "results.db").runs()
    assert {r["status"] for r in runs} == {"failed"} and {len(r["epochs"]) for r in runs} == {1}
    crashed.run(crashing, retry_failed=True, progress=False)
    assert rows(tmp_path / "crash") == rows(tmp_path / "ref")
