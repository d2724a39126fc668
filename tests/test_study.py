"""Studies end to end on digits: store rows, skip finished runs, resume, report files."""

from __future__ import annotations

import json
import sqlite3

import pytest

from rectlab.report import collect, write_report
from rectlab.study import Store, parse_spec, run_study

SPEC = """
[study]
name = "tiny"
seeds = 2
baseline = { activation = "relu" }

[base]
model = "small-cnn"
dataset = "digits"
epochs = 2
batch_size = 64
device = "cpu"

[grid]
activation = ["relu", "prelu-shared"]
"""


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    run_study(parse_spec(SPEC), out, progress=False)
    return out


def test_results_db_has_one_row_per_run_with_config_and_versions(study_dir) -> None:
    runs = Store(study_dir / "results.db").runs()
    assert len(runs) == 4 and all(r["status"] == "done" for r in runs)
    assert {(r["cell"]["activation"], r["seed"]) for r in runs} == {
        ("relu", 0), ("relu", 1), ("prelu-shared", 0), ("prelu-shared", 1)}
    for r in runs:
        assert r["config"]["activation"] == r["cell"]["activation"] and r["config"]["epochs"] == 2
        assert r["versions"]["torch"] and r["versions"]["rectlab"] and r["device"].startswith("cpu")
        assert [e["epoch"] for e in r["epochs"]] == [1, 2]
    with sqlite3.connect(study_dir / "results.db") as db:
        assert db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 8


def test_rerun_skips_completed_runs(study_dir) -> None:
    before = {r["hash"]: r["epochs"] for r in Store(study_dir / "results.db").runs()}
    run_study(parse_spec(SPEC), study_dir, progress=False)
    after = {r["hash"]: r["epochs"] for r in Store(study_dir / "results.db").runs()}
    assert before == after  # identical metrics incl. seconds: nothing was retrained


def test_interrupted_study_resumes(tmp_path, monkeypatch) -> None:
    from rectlab import train

    spec = parse_spec(SPEC.replace("seeds = 2", "seeds = 1"))
    calls = {"n": 0}
    original = train.train_one

    def interrupting(config, run_dir, **kw):  # the user presses Ctrl-C during the second run
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(config, run_dir, **kw)

    with monkeypatch.context() as m:
        m.setattr(train, "train_one", interrupting)
        with pytest.raises(KeyboardInterrupt):
            run_study(spec, tmp_path, progress=False)
    statuses = sorted(r["status"] for r in Store(tmp_path / "results.db").runs())
    assert statuses == ["done", "interrupted"]
    run_study(spec, tmp_path, progress=False)
    assert sorted(r["status"] for r in Store(tmp_path / "results.db").runs()) == ["done", "done"]


def test_report_has_statistics_and_plots(study_dir) -> None:
    results = collect(study_dir)
    assert [c.label for c in results.cells] == ["relu", "prelu-shared"]
    base, prelu = results.cells
    assert base.is_baseline and base.summary.n == 2
    assert prelu.comparison is not None and prelu.comparison.test.startswith("paired")
    assert prelu.slopes and prelu.slopes[0]["kind"] == "prelu"
    report = write_report(study_dir, results)
    html = report.html.read_text()
    assert "data:image/png;base64," in html and "Verdict" in html and "prelu-shared" in html
    assert {"test_error", "train_loss", "final", "slopes", "seconds"} <= set(report.plots)
    for p in report.plots.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = report.markdown.read_text()
    assert "| relu | 2 |" in md and "paired t" in md


def test_failed_run_is_recorded_and_does_not_stop_the_study(tmp_path) -> None:
    spec = parse_spec(SPEC.replace('"prelu-shared"]', '"prelu-shared"]\nlr = [0.05, 1e9]').replace("seeds = 2",
                                                                                                  "seeds = 1"))
    run_study(spec, tmp_path, progress=False)
    runs = Store(tmp_path / "results.db").runs()
    failed = [r for r in runs if r["status"] == "failed"]
    assert failed and all("diverged" in r["error"] for r in failed)
    assert any(r["status"] == "done" for r in runs)
    assert json.loads(json.dumps(collect(tmp_path).incomplete[0]["config"]))["lr"] == 1e9


def test_process_executor_gives_the_same_results_as_local(study_dir, tmp_path) -> None:
    run_study(parse_spec(SPEC), tmp_path, executor="processes", workers=2, progress=False)

    def finals(path):
        return {(r["cell"]["activation"], r["seed"]): [{k: v for k, v in e.items() if k != "seconds"}
                                                       for e in r["epochs"]] for r in Store(path).runs()}

    ours, local = finals(tmp_path / "results.db"), finals(study_dir / "results.db")
    assert ours.keys() == local.keys()
    # Workers run with fewer intra-op threads, which reorders float sums: equal up to rounding.
    for key in local:
        for a, b in zip(ours[key], local[key]):
            assert a.keys() == b.keys()
            assert all(a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-9) for k in a if a[k] is not None)


def test_ray_executor_without_ray_says_how_to_install(tmp_path) -> None:
    try:
        import ray  # noqa: F401

        pytest.skip("ray is installed")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match=r"pip install 'rectlab\[ray\]'"):
        run_study(parse_spec(SPEC), tmp_path, executor="ray", progress=False)
