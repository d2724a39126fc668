"""The reproduction report: ``reproduction.md`` and a self-contained ``reproduction.html``.

Layout: the paper's claim with its published numbers, the scale and how our setting differs, the
verdict with its reason, every claim check (rule and evidence), our results per part (n, mean ± std,
95% CI, difference to the baseline with its CI and p), extra tables, and the plots.
"""

from __future__ import annotations

import base64
import html as htmllib
from pathlib import Path

from ..report.tables import HEADERS, rows
from .core import SCALE_TEXT, Analysis, Context, Reproduction, Table

__all__ = ["write_reproduction"]

STATS_NOTE = ("Statistics: per-seed final values; mean ± sample std; 95% CI from Student's t; differences by a "
              "paired t-test when both groups ran the same seeds (Welch's t-test otherwise); each claim is tested "
              "at alpha = 0.05 without correction for the number of checks.")

PART_PLOTS = (("train_loss", "training loss"), ("test_error", "test error"), ("final", "final error per cell"))


def _md_table(headers: list[str], body: list[list[str]]) -> str:
    def cells(row: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"

    return "\n".join([cells(headers), "|" + "---|" * len(headers), *(cells(row) for row in body)])


def _setup_line(spec) -> str:
    base = spec.base
    shown = [f"model={base.model}", f"dataset={base.dataset}", f"epochs={base.epochs}",
             f"batch_size={base.batch_size}", f"optimizer={base.optimizer}", f"lr={base.lr}",
             f"weight_decay={base.weight_decay}"]
    if base.model_kwargs:
        shown.append(f"model_kwargs={base.model_kwargs}")
    if base.train_limit:
        shown.append(f"train_limit={base.train_limit}")
    if base.test_limit:
        shown.append(f"test_limit={base.test_limit}")
    grid = "; ".join(f"{k} ∈ {list(v)}" for k, v in spec.grid.items())
    return f"{', '.join(shown)}; grid: {grid}; seeds {list(spec.seeds)}"


def _part_tables(ctx: Context) -> list[tuple[str, str, str, Table, dict[str, Path]]]:
    out = []
    for name, p in ctx.parts.items():
        body = rows(p.results) if p.results.cells else []
        table = Table(f"{p.part.title}", list(HEADERS), body,
                      note=f"{len(p.results.incomplete)} run(s) not done" if p.results.incomplete else "")
        plots = {title: p.dir / "plots" / f"{key}.png" for key, title in PART_PLOTS
                 if (p.dir / "plots" / f"{key}.png").is_file()}
        out.append((name, _setup_line(p.spec), f"{name}/report.html", table, plots))
    return out


def write_reproduction(repro: Reproduction, ctx: Context, analysis: Analysis, verdict: str, reason: str,
                       seconds: float, command: str) -> tuple[Path, Path]:
    """Write the Markdown and HTML reports into ``ctx.out``; return their paths."""
    out = ctx.out
    parts = _part_tables(ctx)
    check_rows = [[c.claim, c.verdict, c.reason, "yes" if c.primary else "no"] for c in analysis.checks]
    check_headers = ["claim", "verdict", "evidence and rule", "primary"]
    published = [list(row) for row in repro.published]

    def rel(path: Path) -> str:
        try:
            return str(path.relative_to(out))
        except ValueError:
            return str(path)

    md = [f"# Reproduction `{repro.name}`: {verdict}", "",
          f"- **paper**: {repro.paper}",
          f"- **claim**: {repro.claim}",
          f"- **scale**: {ctx.scale} — {SCALE_TEXT.get(ctx.scale, '')}",
          f"- **command**: `{command}` ({seconds:.0f} s)"]
    if repro.notes:
        md.append(f"- **our setting vs the paper's**: {repro.notes}")
    md += ["", "## Published numbers", "", _md_table(["setting", "published"], published), "",
           f"## Verdict: **{verdict}**", "", reason, "",
           "## Claims checked", "", _md_table(check_headers, check_rows) if check_rows else "_no checks_", ""]
    for note in analysis.notes:
        md += [f"> {note}", ""]
    for name, setup, link, table, plots in parts:
        md += [f"## Part `{name}`: {table.title}", "", f"_{setup}_ ([full report]({link}))", "",
               _md_table(table.headers, table.rows) if table.rows else "_no finished runs_", ""]
        if table.note:
            md += [f"_{table.note}_", ""]
        md += [f"![{name} {title}]({rel(path)})" for title, path in plots.items()] + [""]
    for t in analysis.tables:
        md += [f"## {t.title}", "", _md_table(t.headers, t.rows), ""]
        if t.note:
            md += [f"_{t.note}_", ""]
    for caption, path in analysis.plots.items():
        md += [f"## {caption}", "", f"![{caption}]({rel(path)})", ""]
    md += ["---", STATS_NOTE, ""]
    md_path = out / "reproduction.md"
    md_path.write_text("\n".join(md))

    def h(s: object) -> str:
        return htmllib.escape(str(s))

    def table_html(headers: list[str], body: list[list[str]], verdict_col: int | None = None) -> str:
        head = "".join(f"<th>{h(x)}</th>" for x in headers)
        trs = []
        for row in body:
            cls = ""
            if verdict_col is not None and len(row) > verdict_col:
                cls = f' class="{row[verdict_col].replace(" ", "-")}"'
            trs.append(f"<tr{cls}>" + "".join(f"<td>{h(x)}</td>" for x in row) + "</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(trs)}</tbody></table>"

    def img(path: Path, caption: str) -> str:
        if not path.is_file():
            return ""
        data = base64.b64encode(path.read_bytes()).decode()
        return (f"<figure><img alt='{h(caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{h(caption)}</figcaption></figure>")

    body = [f"<h1>Reproduction <code>{h(repro.name)}</code>: <span class='{verdict.replace(' ', '-')}'>"
            f"{h(verdict)}</span></h1>",
            "<dl>",
            f"<dt>paper</dt><dd>{h(repro.paper)}</dd>",
            f"<dt>claim</dt><dd>{h(repro.claim)}</dd>",
            f"<dt>scale</dt><dd>{h(ctx.scale)} — {h(SCALE_TEXT.get(ctx.scale, ''))}</dd>",
            f"<dt>command</dt><dd><code>{h(command)}</code> ({seconds:.0f} s)</dd>"]
    if repro.notes:
        body.append(f"<dt>our setting</dt><dd>{h(repro.notes)}</dd>")
    body += ["</dl>", "<h2>Published numbers</h2>", table_html(["setting", "published"], published),
             f"<p class='verdict'><b>Verdict: {h(verdict)}.</b> {h(reason)}</p>",
             "<h2>Claims checked</h2>", table_html(check_headers, check_rows, verdict_col=1)]
    body += [f"<blockquote>{h(n)}</blockquote>" for n in analysis.notes]
    for name, setup, link, table, plots in parts:
        body += [f"<h2>Part <code>{h(name)}</code>: {h(table.title)}</h2>",
                 f"<p><i>{h(setup)}</i> (<a href='{h(link)}'>full report</a>)</p>",
                 table_html(table.headers, table.rows, verdict_col=7) if table.rows else "<p>no finished runs</p>"]
        if table.note:
            body.append(f"<p><i>{h(table.note)}</i></p>")
        body += [img(path, f"{name}: {title}") for title, path in plots.items()]
    for t in analysis.tables:
        body += [f"<h2>{h(t.title)}</h2>", table_html(t.headers, t.rows)]
        if t.note:
            body.append(f"<p><i>{h(t.note)}</i></p>")
    if analysis.plots:
        body.append("<h2>Plots</h2>")
        body += [img(path, caption) for caption, path in analysis.plots.items()]
    body.append(f"<p style='color:#777'>{h(STATS_NOTE)}</p>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{h(repro.name)} — rectlab reproduction</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
.reproduced, tr.reproduced td, tr.better td {{ background: #e8f6e8; }}
.not-reproduced, tr.not-reproduced td, tr.worse td {{ background: #fbe9e9; }}
.inconclusive, tr.inconclusive td {{ background: #fdf6e3; }}
.verdict {{ background: #f6f8fa; border-left: 4px solid #4a7; padding: 0.6em 1em; }}
figure {{ display: inline-block; margin: 0.5em; }} img {{ max-width: 540px; border: 1px solid #ddd; }}
dt {{ font-weight: bold; float: left; width: 8em; }} dd {{ margin-left: 9em; margin-bottom: 0.3em; }}
</style></head><body>
{''.join(body)}
</body></html>
"""
    html_path = out / "reproduction.html"
    html_path.write_text(page)
    return md_path, html_path
