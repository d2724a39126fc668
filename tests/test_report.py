"""rectlab.report's public functions on a results store written by hand (no training): collect, print_table,
write_report. The statistics themselves are checked in ``test_stats.py``; a report of a real study in
``test_study.py``."""

from __future__ import annotations

import io
import math

import pytest

from rectlab.report import collect, print_table, write_report
from rectlab.study import Store

FINALS = {"relu": [10.0, 11.0, 12.0], "prelu": [8.0, 9.5, 9.75]}
SPEC = {
    "study": {"name": "handmade", "seeds": 3, "baseline": {"activation": "relu"}},
    "base": {"model": "mlp", "dataset": "digits", "epochs": 2},
    "grid": {"activation": ["relu", "prelu"]},
}


@pytest.fixture
def study_dir(tmp_path):
    store = Store(tmp_path / "results.db")
    store.save_spec("handmade", SPEC)
    versions = {"rectlab": "test", "torch": "test", "device": "cpu"}
    for act, finals in reversed(FINALS.items()):  # stored out of spec order
        for seed, final in enumerate(finals):
            h = f"{act}-{seed}"
            store.start_run(h, "handmade", {"activation": act}, seed, {"activation": act, "seed": seed}, versions)
            for epoch, error in ((1, final + 5.0), (2, final)):
                store.add_epoch(h, {"epoch": epoch, "test_error": error, "train_loss": error / 10, "seconds": 1.0})
            store.finish_run(h, "done", extras={})
    store.start_run("gelu-0", "handmade", {"activation": "gelu"}, 0, {"activation": "gelu", "seed": 0}, versions)
    store.finish_run("gelu-0", "failed", error="boom")
    return tmp_path


def test_collect_groups_runs_by_cell_in_spec_order(study_dir) -> None:
    results = collect(study_dir)
    assert results.name == "handmade" and results.metric == "test_error"
    assert [c.label for c in results.cells] == ["relu", "prelu"]
    for cell in results.cells:
        assert cell.final_by_seed == dict(enumerate(FINALS[cell.label]))
        assert cell.summary.mean == pytest.approx(sum(FINALS[cell.label]) / 3)
    relu, prelu = results.cells
    assert relu.is_baseline and relu.comparison is None
    assert not prelu.is_baseline and prelu.comparison is not None and math.isfinite(prelu.comparison.p_value)
    assert [(r["cell"], r["status"]) for r in results.incomplete] == [({"activation": "gelu"}, "failed")]


def test_collect_without_a_store_says_what_to_pass(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="--out directory"):
        collect(tmp_path)


def test_print_table_names_every_cell(study_dir) -> None:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200)
    print_table(collect(study_dir), console=console)
    text = console.file.getvalue()
    assert "handmade" in text and "relu" in text and "prelu" in text


def test_write_report_writes_markdown_and_html(study_dir) -> None:
    report = write_report(study_dir)
    assert report.markdown.is_file() and report.html.is_file()
    for path in (report.markdown, report.html):
        text = path.read_text()
        assert "handmade" in text and "prelu" in text
    assert report.html.read_text().lstrip().lower().startswith("<!doctype html")
