"""Studies end to end on digits: store rows, skip finished runs, resume, report files."""

from __future__ import annotations

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
        ("relu", 0),
        ("relu", 1),
        ("prelu-shared", 0),
        ("prelu-shared", 1),
    }
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
    from rectlab.training import loop as train

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
    assert prelu.comparison is not None and prelu.comparison.too_few  # 2 seeds per cell: no test
    assert prelu.slopes and prelu.slopes[0]["kind"] == "prelu"
    report = write_report(study_dir, results)
    html = report.html.read_text()
    assert "data:image/png;base64," in html and "Verdict" in html and "prelu-shared" in html
    assert {"test_error", "train_loss", "final", "slopes", "seconds"} <= set(report.plots)
    for p in report.plots.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = report.markdown.read_text()
    assert "| relu | 2 |" in md and "n too small (need" in md
    assert "n = 2 seed(s) per cell is too small to compare: no test was run" in md and "--seeds 3" in md


def test_diverged_run_is_an_outcome_kept_and_not_retrained(tmp_path) -> None:
    spec = parse_spec(
        SPEC.replace('"prelu-shared"]', '"prelu-shared"]\nlr = [0.05, 1e9]').replace("seeds = 2", "seeds = 1")
    )
    run_study(spec, tmp_path, progress=False)
    runs = Store(tmp_path / "results.db").runs()
    diverged = [r for r in runs if r["status"] == "diverged"]
    assert len(diverged) == 2 and all(r["config"]["lr"] == 1e9 for r in diverged)
    assert sum(r["status"] == "done" for r in runs) == 2 and not any(r["status"] == "failed" for r in runs)
    for r in diverged:
        info = r["extras"]["diverged"]
        assert info["epoch"] == 1 and 1 <= info["step"] <= 22 and info["loss"] in ("nan", "inf", "-inf")
        assert "diverged in epoch 1" in r["error"] and r["epochs"] == []
    started = {r["hash"]: r for r in Store(tmp_path / "results.db").runs()}
    run_study(spec, tmp_path, progress=False)  # a re-run trains nothing: diverging is a result
    assert {r["hash"]: r for r in Store(tmp_path / "results.db").runs()} == started
    results = collect(tmp_path)
    assert [(len(c.diverged), c.summary.n) for c in results.cells] == [(0, 1), (1, 0), (0, 1), (1, 0)]
    assert "| 0 (+1 diverged) |" in write_report(tmp_path, results).markdown.read_text()  # n with the diverged

    run_study(spec, tmp_path, progress=False, retry_diverged=True)
    again = Store(tmp_path / "results.db").runs(status="diverged")
    assert {r["hash"] for r in again} == {r["hash"] for r in diverged}
    assert all(r["extras"]["diverged"] == started[r["hash"]]["extras"]["diverged"] for r in again)


def test_failed_run_is_listed_and_retrained_only_with_retry_failed(tmp_path, monkeypatch) -> None:
    from rectlab.training import loop as train

    spec = parse_spec(SPEC.replace("seeds = 2", "seeds = 1").replace('model = "small-cnn"', 'model = "mlp"'))
    original = train.train_one

    def broken_for_prelu(config, run_dir, **kw):
        if config.activation == "prelu-shared":
            raise RuntimeError("CUDA out of memory (simulated)")
        return original(config, run_dir, **kw)

    with monkeypatch.context() as m:
        m.setattr(train, "train_one", broken_for_prelu)
        run_study(spec, tmp_path, progress=False)
        assert sorted(r["status"] for r in Store(tmp_path / "results.db").runs()) == ["done", "failed"]
        run_study(spec, tmp_path, progress=False)  # not retrained without the flag: still the same failure
        failed = Store(tmp_path / "results.db").runs(status="failed")
        assert len(failed) == 1 and "out of memory (simulated)" in failed[0]["error"]
    assert collect(tmp_path).incomplete[0]["status"] == "failed"
    run_study(spec, tmp_path, progress=False, retry_failed=True)
    assert sorted(r["status"] for r in Store(tmp_path / "results.db").runs()) == ["done", "done"]


def test_process_executor_gives_the_same_results_as_local_and_reports_epochs(study_dir, tmp_path, monkeypatch) -> None:
    import io

    from rich.console import Console

    from rectlab.study import executors

    monkeypatch.setattr(executors._Display, "PLAIN_EVERY", 0.0)  # every epoch line (normally one per 10 s)
    log = io.StringIO()  # not a terminal: plain lines
    run_study(parse_spec(SPEC), tmp_path, executor="processes", workers=2, console=Console(file=log, width=200))
    lines = log.getvalue().splitlines()
    # the workers report each epoch of each run to the parent, which prints it with the study's ETA
    for activation in ("relu", "prelu-shared"):
        for seed in (0, 1):
            for epoch in (1, 2):
                assert any(line.strip().startswith(f"{activation}, seed {seed}: epoch {epoch}/2") for line in lines)
    assert any("study: 8/8 epochs" in line or "ETA" in line for line in lines)
    finished = [line.split(":")[0] for line in lines if line.startswith("run ")]
    assert finished == [f"run {i}/4 done" for i in (1, 2, 3, 4)]

    def finals(path):
        return {
            (r["cell"]["activation"], r["seed"]): [{k: v for k, v in e.items() if k != "seconds"} for e in r["epochs"]]
            for r in Store(path).runs()
        }

    ours, local = finals(tmp_path / "results.db"), finals(study_dir / "results.db")
    # Every executor runs each run with the same intra-op threads and seeds: bit-identical metrics.
    assert ours == local


def test_processes_executor_trains_a_single_run_without_a_worker_process(tmp_path, monkeypatch) -> None:
    from rectlab.study import executors

    def no_workers(*args, **kwargs):
        raise AssertionError("a worker process was started for a single run")

    monkeypatch.setattr(executors, "_run_processes", no_workers)
    spec = parse_spec(SPEC.replace('["relu", "prelu-shared"]', '["relu"]').replace("seeds = 2", "seeds = 1"))
    run_study(spec, tmp_path, executor="processes", workers=2, progress=False)
    assert [r["status"] for r in Store(tmp_path / "results.db").runs()] == ["done"]
    with pytest.raises(AssertionError, match="worker process"):  # two runs: the workers are used
        run_study(
            parse_spec(SPEC.replace("seeds = 2", "seeds = 1")),
            tmp_path / "two",
            executor="processes",
            workers=2,
            progress=False,
        )


def test_ray_executor_without_ray_says_how_to_install(tmp_path) -> None:
    try:
        import ray  # noqa: F401

        pytest.skip("ray is installed")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match=r"pip install 'rectlab\[ray\]'"):
        run_study(parse_spec(SPEC), tmp_path, executor="ray", progress=False)
