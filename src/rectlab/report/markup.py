"""One document model for every report: blocks rendered to Markdown and to one self-contained HTML page.

Study reports (``report.md`` / ``report.html``) and reproduction reports (``reproduction.md`` /
``reproduction.html``) are both built as a `Document`: headings, paragraphs, key/value
lists, tables (with a verdict column coloured the same way everywhere), notes and images (linked
from the Markdown, embedded as base64 in the HTML), written side by side by `Document.write`.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from ..files import write_text

__all__ = ["Document", "md_table", "verdict_class"]

_GOOD = ("reproduced", "better")
_BAD = ("not reproduced", "contradicted", "worse")

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.good, tr.good td { background: #e8f6e8; } .bad, tr.bad td { background: #fbe9e9; }
.open, tr.open td { background: #fdf6e3; }
.verdict { background: #f6f8fa; border-left: 4px solid #4a7; padding: 0.6em 1em; }
.note { color: #666; font-style: italic; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
img { max-width: 540px; border: 1px solid #ddd; }
dt { font-weight: bold; float: left; width: 9em; } dd { margin-left: 10em; margin-bottom: 0.3em; }
"""


def verdict_class(text: str) -> str:
    """The CSS class of a verdict or comparison outcome: "good", "bad", "open" (undecided) or ""."""
    t = text.strip().lower()
    if not t:
        return ""
    if t.startswith(_BAD):
        return "bad"
    if t.startswith(_GOOD):
        return "good"
    return "open" if t.startswith(("inconclusive", "no significant", "weaker than claimed", "n too small")) else ""


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (``|`` inside cells escaped)."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), "|" + "---|" * len(headers), *(line(r) for r in rows)])


def _h(text: object) -> str:
    return html.escape(str(text))


@dataclass
class _Block:
    kind: str
    text: str = ""
    level: int = 2
    items: list[tuple[str, str]] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    verdict_col: int | None = None
    path: Path | None = None
    cls: str = ""


@dataclass
class Document:
    """A report under construction; every method appends a block and returns the document.

    Args:
        title: the page title (the first heading).
        title_class: a CSS class for the title's verdict (see `verdict_class`).
    """

    title: str
    title_class: str = ""
    blocks: list[_Block] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> Document:
        self.blocks.append(_Block("heading", text, level))
        return self

    def para(self, text: str, *, verdict: bool = False) -> Document:
        """A paragraph (skipped when empty); ``verdict=True`` sets it off as the verdict box."""
        if text:
            self.blocks.append(_Block("para", text, cls="verdict" if verdict else ""))
        return self

    def note(self, text: str) -> Document:
        """A side remark in italics (e.g. how many runs are not done)."""
        if text:
            self.blocks.append(_Block("note", text))
        return self

    def quote(self, text: str) -> Document:
        self.blocks.append(_Block("quote", text))
        return self

    def items(self, pairs: list[tuple[str, str]]) -> Document:
        """Key/value pairs: a bullet list in Markdown, a definition list in HTML."""
        self.blocks.append(_Block("items", items=list(pairs)))
        return self

    def table(
        self,
        headers: list[str],
        rows: list[list[str]],
        *,
        verdict_col: int | None = None,
        note: str = "",
        empty: str = "no finished runs",
    ) -> Document:
        """A table; rows are coloured by the verdict in column ``verdict_col``; ``empty`` replaces a table
        without rows."""
        if rows:
            self.blocks.append(
                _Block("table", headers=list(headers), rows=[list(r) for r in rows], verdict_col=verdict_col)
            )
        else:
            self.blocks.append(_Block("note", empty))
        return self.note(note)

    def image(self, path: Path, caption: str) -> Document:
        """A PNG; skipped when the file does not exist."""
        if Path(path).is_file():
            self.blocks.append(_Block("image", caption, path=Path(path)))
        return self

    # -- rendering ---------------------------------------------------------------------------------------

    def markdown(self, base: Path) -> str:
        """The Markdown text; image links are relative to ``base`` (the report's folder)."""
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if b.kind == "heading":
                out += ["#" * b.level + f" {b.text}", ""]
            elif b.kind == "para":
                out += [b.text, ""]
            elif b.kind == "note":
                out += [f"_{b.text}_", ""]
            elif b.kind == "quote":
                out += [f"> {b.text}", ""]
            elif b.kind == "items":
                out += [f"- **{k}**: {v}" for k, v in b.items] + [""]
            elif b.kind == "table":
                out += [md_table(b.headers, b.rows), ""]
            elif b.kind == "image" and b.path is not None:
                out += [f"![{b.text}]({_relative(b.path, base)})", ""]
        return "\n".join(out)

    def html(self) -> str:
        """One self-contained HTML page (images embedded)."""
        title = f"<span class='{self.title_class}'>{_h(self.title)}</span>" if self.title_class else _h(self.title)
        body = [f"<h1>{title}</h1>"]
        figures: list[str] = []
        for b in self.blocks:
            if b.kind != "image" and figures:
                body.append("<div>" + "".join(figures) + "</div>")
                figures = []
            if b.kind == "heading":
                body.append(f"<h{b.level}>{_h(b.text)}</h{b.level}>")
            elif b.kind == "para":
                cls = f" class='{b.cls}'" if b.cls else ""
                body.append(f"<p{cls}>{_h(b.text)}</p>")
            elif b.kind == "note":
                body.append(f"<p class='note'>{_h(b.text)}</p>")
            elif b.kind == "quote":
                body.append(f"<blockquote>{_h(b.text)}</blockquote>")
            elif b.kind == "items":
                body.append("<dl>" + "".join(f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in b.items) + "</dl>")
            elif b.kind == "table":
                body.append(_html_table(b.headers, b.rows, b.verdict_col))
            elif b.kind == "image" and b.path is not None:
                data = base64.b64encode(b.path.read_bytes()).decode()
                figures.append(
                    f"<figure><img alt='{_h(b.text)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{_h(b.text)}</figcaption></figure>"
                )
        if figures:
            body.append("<div>" + "".join(figures) + "</div>")
        return (
            f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{_h(self.title)}</title>'
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )

    def write(self, folder: Path, stem: str) -> tuple[Path, Path]:
        """Write ``folder/stem.md`` and ``folder/stem.html`` (each atomically); return both paths."""
        folder = Path(folder)
        md, page = folder / f"{stem}.md", folder / f"{stem}.html"
        markdown, html_page = self.markdown(folder), self.html()  # both composed before either file is replaced
        write_text(md, markdown)  # each file whole (temporary file, then rename), never half-written
        write_text(page, html_page)
        return md, page


def _html_table(headers: list[str], rows: list[list[str]], verdict_col: int | None) -> str:
    head = "".join(f"<th>{_h(x)}</th>" for x in headers)
    body = []
    for row in rows:
        cls = verdict_class(row[verdict_col]) if verdict_col is not None and len(row) > verdict_col else ""
        attr = f" class='{cls}'" if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{_h(x)}</td>" for x in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _relative(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(path)
