"""Write a study's report: a rich terminal table, ``report.md`` and a self-contained ``report.html``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..study.spec import METRICS
from .aggregate import across_tasks, aggregate_headers, aggregate_rows, aggregate_sentences, plot_profiles
from .collect import StudyResults, collect
from .markup import Document
from .plots import make_plots
from .tables import HEADERS, VERDICT_COL, fmt, power_sentence, rows, runs_sentences, verdict_sentence

__all__ = ["Report", "write_report", "print_table"]

PLOT_TITLES = {
    "test_error": "Test error vs epoch",
    "train_loss": "Training loss",
    "final": "Final error per cell",
    "slopes": "Learned slopes per layer",
    "seconds": "Seconds per epoch",
}
STATS_NOTE = (
    "Statistics: mean ± sample std over seeds; 95% CI from Student's t; differences by a paired t-test when "
    "the seeds match (Welch's t-test otherwise; exact permutation tests when values tie), p-values "
    "Holm-corrected over the study's comparisons; each difference's CI, MDE (minimum detectable effect "
    "at 80% power) and verdict use the level Holm tests it at (marked when it is not 95%); fewer than "
    "3 seeds per cell: no test. Stalled: a run whose training loss stayed within 5% of chance (ln C) "
    "at every epoch."
)


@dataclass
class Report:
    results: StudyResults
    markdown: Path
    html: Path
    plots: dict[str, Path]


# The built-in metrics are percentages (errors) or losses, all lower-is-better.
_PERCENT = ("test_error", "test_top5_error", "train_error")


def _title(results: StudyResults) -> str:
    unit = " (%)" if results.metric in _PERCENT else ""
    return f"final {results.metric.replace('_', ' ')}{unit}, {'higher' if results.goal == 'max' else 'lower'} is better"


def print_table(results: StudyResults, console: Any = None) -> None:
    """Print the results table, the verdict, the minimum detectable effects and any unusual runs."""
    console = console or Console()
    table = Table(title=f"{results.name}: {_title(results)}")
    for h in HEADERS:
        table.add_column(h, justify="left" if h in ("cell", "verdict", "test") else "right")
    styles = {"better": "green", "worse": "red"}
    for row in rows(results):
        table.add_row(*row, style=styles.get(row[VERDICT_COL], ""))
    console.print(table)
    for line in [verdict_sentence(results), power_sentence(results), *runs_sentences(results)]:
        if line:
            console.print(line, soft_wrap=True, markup=False)
    agg = across_tasks(results)
    if agg is not None:  # several datasets / models: the aggregate view (Agarwal et al. 2021)
        table = Table(title="Across tasks")
        for h in aggregate_headers(agg):
            table.add_column(h, justify="left" if h == "cell" else "right")
        for row in aggregate_rows(agg):
            table.add_row(*row)
        console.print(table)
        for line in aggregate_sentences(agg):
            console.print(line, soft_wrap=True, markup=False)


def _slope_rows(results: StudyResults) -> tuple[list[str], list[list[str]]]:
    cells = [c for c in results.cells if c.slopes]
    layers = list(dict.fromkeys(row["layer"] for c in cells for row in c.slopes))
    body = [
        [layer] + [next((fmt(r["mean"], 3) for r in c.slopes if r["layer"] == layer), "") for c in cells]
        for layer in layers
    ]
    return ["layer"] + [c.label for c in cells], body


def _context(results: StudyResults) -> list[tuple[str, str]]:
    study, base = results.spec.get("study", {}), results.spec.get("base", {})
    items = [(key, str(study[key])) for key in ("description", "paper", "claim") if study.get(key)]
    shown = (
        "model",
        "model_kwargs",
        "dataset",
        "epochs",
        "batch_size",
        "optimizer",
        "lr",
        "schedule",
        "weight_decay",
        "train_limit",
        "init",
    )
    counts = results.run_counts()
    items += [
        ("grid", ", ".join(f"{k} ∈ {v}" for k, v in results.spec.get("grid", {}).items())),
        ("seeds", str(study.get("seeds"))),
        (
            "setup",
            ", ".join(f"{k}={base[k]}" for k in shown if k in base)
            if "function" not in base
            else ", ".join(f"{k}={v}" for k, v in base.items() if k not in ("seed", "device", "data_dir")),
        ),
        ("baseline", ", ".join(f"{k}={v}" for k, v in results.baseline.items()) or "none"),
        ("runs", ", ".join(f"{v} {k}" for k, v in counts.items())),
        ("device", "; ".join(results.devices) or "unknown"),
        ("versions", ", ".join(f"{k} {v}" for k, v in results.versions.items() if k != "device")),
    ]
    return items


def write_report(study_dir: str | Path, results: StudyResults | None = None, *, stem: str = "report") -> Report:
    """Write ``report.md``, ``report.html`` (``stem`` names them) and ``plots/*.png`` into ``study_dir``."""
    study_dir = Path(study_dir)
    results = results or collect(study_dir)
    plots = make_plots(results, study_dir / "plots") if results.cells else {}
    agg = across_tasks(results)
    profile = plot_profiles(agg, study_dir / "plots" / "profiles.png") if agg is not None else None
    doc = Document(results.name).items(_context(results))
    doc.heading(f"Results: {_title(results)}").table(HEADERS, rows(results), verdict_col=VERDICT_COL)
    doc.para(f"Verdict. {verdict_sentence(results)}", verdict=True).para(power_sentence(results))
    for line in runs_sentences(results):
        doc.note(line)
    slope_headers, slope_rows = _slope_rows(results)
    if slope_rows:
        doc.heading("Learned slopes per layer (channel-shared value / channel-wise mean, mean over seeds)")
        doc.table(slope_headers, slope_rows)
    if agg is not None:
        doc.heading("Across tasks").table(aggregate_headers(agg), aggregate_rows(agg))
        for line in aggregate_sentences(agg):
            doc.note(line)
        if profile is not None:
            doc.image(profile, "Performance profiles across tasks")
    doc.heading("Plots")
    for name, path in plots.items():
        title = PLOT_TITLES.get(name, name)
        if name in ("test_error", "final") and results.metric not in METRICS:  # a function study's own metric
            title = (
                f"{results.metric.replace('_', ' ')} vs epoch"
                if name == "test_error"
                else f"Final {results.metric.replace('_', ' ')} per cell"
            )
        doc.image(path, title)
    doc.note(STATS_NOTE)
    md, page = doc.write(study_dir, stem)
    return Report(results, md, page, plots)
