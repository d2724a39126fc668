"""Write a study's report: a rich terminal table, ``report.md`` and a self-contained ``report.html``."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .collect import StudyResults, collect
from .plots import make_plots
from .tables import HEADERS, fmt, rows, verdict_sentence

__all__ = ["Report", "write_report", "print_table"]

PLOT_TITLES = {
    "test_error": "Test error vs epoch",
    "train_loss": "Training loss",
    "final": "Final error per cell",
    "slopes": "Learned slopes per layer",
    "seconds": "Seconds per epoch",
}


@dataclass
class Report:
    results: StudyResults
    markdown: Path
    html: Path
    plots: dict[str, Path]


def print_table(results: StudyResults, console: Any = None) -> None:
    """Print the results table and the verdict to the terminal."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{results.name}: final {results.metric.replace('_', ' ')} (%), lower is better")
    for h in HEADERS:
        table.add_column(h, justify="left" if h in ("cell", "verdict", "test") else "right")
    styles = {"better": "green", "worse": "red"}
    for row in rows(results):
        style = styles.get(row[7], "")
        table.add_row(*row, style=style)
    console.print(table)
    console.print(verdict_sentence(results), soft_wrap=True)
    if results.incomplete:
        console.print(f"[yellow]{len(results.incomplete)} run(s) not done "
                      f"({', '.join(sorted({r['status'] for r in results.incomplete}))}); re-run to finish them.[/]")


def _md_table(headers: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)


def _slope_rows(results: StudyResults) -> tuple[list[str], list[list[str]]]:
    cells = [c for c in results.cells if c.slopes]
    if not cells:
        return [], []
    layers: list[str] = []
    for c in cells:
        for row in c.slopes:
            if row["layer"] not in layers:
                layers.append(row["layer"])
    headers = ["layer"] + [c.label for c in cells]
    body = []
    for layer in layers:
        line = [layer]
        for c in cells:
            match = [r for r in c.slopes if r["layer"] == layer]
            line.append(fmt(match[0]["mean"], 3) if match else "")
        body.append(line)
    return headers, body


def _context(results: StudyResults) -> list[tuple[str, str]]:
    study = results.spec.get("study", {})
    base = results.spec.get("base", {})
    items = []
    for key in ("description", "paper", "claim"):
        if study.get(key):
            items.append((key, str(study[key])))
    items.append(("grid", ", ".join(f"{k} ∈ {v}" for k, v in results.spec.get("grid", {}).items())))
    items.append(("seeds", str(study.get("seeds"))))
    shown = ("model", "dataset", "epochs", "batch_size", "optimizer", "lr", "schedule", "weight_decay",
             "train_limit", "init")
    items.append(("setup", ", ".join(f"{k}={base[k]}" for k in shown if k in base)))
    items.append(("baseline", ", ".join(f"{k}={v}" for k, v in results.baseline.items()) or "none"))
    items.append(("device", "; ".join(results.devices) or "unknown"))
    items.append(("versions", ", ".join(f"{k} {v}" for k, v in results.versions.items() if k != "device")))
    return items


def write_report(study_dir: str | Path, results: StudyResults | None = None) -> Report:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` into ``study_dir``."""
    study_dir = Path(study_dir)
    results = results or collect(study_dir)
    plots = make_plots(results, study_dir / "plots") if results.cells else {}
    table = rows(results)
    verdict = verdict_sentence(results)
    context = _context(results)
    slope_headers, slope_body = _slope_rows(results)

    md = [f"# {results.name}", ""]
    md += [f"- **{k}**: {v}" for k, v in context]
    md += ["", f"## Results: final {results.metric.replace('_', ' ')} (%), lower is better", "",
           _md_table(HEADERS, table), "", f"**Verdict.** {verdict}", ""]
    if results.incomplete:
        md += [f"_{len(results.incomplete)} run(s) not done; re-run the study to finish them._", ""]
    if slope_body:
        md += ["## Learned slopes per layer (channel-shared value / channel-wise mean, mean over seeds)", "",
               _md_table(slope_headers, slope_body), ""]
    for name, path in plots.items():
        md += [f"## {PLOT_TITLES.get(name, name)}", "", f"![{name}](plots/{path.name})", ""]
    md_path = study_dir / "report.md"
    md_path.write_text("\n".join(md))

    def h(s: str) -> str:
        return html.escape(str(s))

    def table_html(headers: list[str], body: list[list[str]], verdict_col: int | None = None) -> str:
        head = "".join(f"<th>{h(x)}</th>" for x in headers)
        trs = []
        for row in body:
            cls = f' class="{row[verdict_col].split()[0]}"' if verdict_col is not None and row[verdict_col] else ""
            trs.append(f"<tr{cls}>" + "".join(f"<td>{h(x)}</td>" for x in row) + "</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(trs)}</tbody></table>"

    imgs = []
    for name, path in plots.items():
        data = base64.b64encode(path.read_bytes()).decode()
        imgs.append(f"<figure><img alt='{h(name)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{h(PLOT_TITLES.get(name, name))}</figcaption></figure>")
    incomplete_html = (f"<p><i>{len(results.incomplete)} run(s) not done; re-run the study to finish them.</i></p>"
                       if results.incomplete else "")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{h(results.name)} — rectlab report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
tr.better td {{ background: #e8f6e8; }} tr.worse td {{ background: #fbe9e9; }}
.verdict {{ background: #f6f8fa; border-left: 4px solid #4a7; padding: 0.6em 1em; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
img {{ max-width: 520px; border: 1px solid #ddd; }}
dt {{ font-weight: bold; float: left; width: 7em; }} dd {{ margin-left: 8em; }}
</style></head><body>
<h1>{h(results.name)}</h1>
<dl>{''.join(f'<dt>{h(k)}</dt><dd>{h(v)}</dd>' for k, v in context)}</dl>
<h2>Final {h(results.metric.replace('_', ' '))} (%), lower is better</h2>
{table_html(HEADERS, table, verdict_col=7)}
<p class="verdict"><b>Verdict.</b> {h(verdict)}</p>
{incomplete_html}
{('<h2>Learned slopes per layer</h2>' + table_html(slope_headers, slope_body)) if slope_body else ''}
<h2>Plots</h2>
{''.join(imgs)}
<p style="color:#888">Generated by rectlab. Statistics: mean ± sample std over seeds; 95% CI from Student's t;
differences by paired t-test when seeds match, Welch's t-test otherwise.</p>
</body></html>
"""
    html_path = study_dir / "report.html"
    html_path.write_text(page)
    return Report(results, md_path, html_path, plots)
