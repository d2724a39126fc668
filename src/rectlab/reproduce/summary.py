"""One table over several reproductions (``rectlab reproduce all``): verdict, primary evidence, runs and time.

Reads the ``verdict.json`` records written by `rectlab.reproduce.runner.run_reproduction`, so the table can
be rebuilt from finished output folders (e.g. to update ``rectlab/specs/RESULTS.md``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..report.markup import md_table

__all__ = ["HEADERS", "load_records", "summary_markdown", "summary_rows"]

HEADERS = ["study", "verdict", "primary claims: estimate [95% CI], MDE, margin, n", "runs", "converged", "time"]


def load_records(folders: Iterable[str | Path]) -> list[dict[str, Any]]:
    """The ``verdict.json`` of each folder that has one, in the given order."""
    return [json.loads((Path(f) / "verdict.json").read_text()) for f in folders if (Path(f) / "verdict.json").is_file()]


def _num(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _check_text(c: Mapping[str, Any]) -> str:
    if c["estimate"] is None:
        return f"{c['verdict']}: {c['claim']}"
    lo, hi = c["ci"]
    margin = f", margin {c['margin']:g}" if c["margin"] is not None else ""
    return (f"{c['verdict']}: {c['claim']} — {c['estimate']:+.2f} [{_num(lo)}, {_num(hi)}], MDE {_num(c['mde'])}"
            f"{margin}, n={c['n']}")


def summary_rows(records: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """One row per reproduction."""
    rows = []
    for r in records:
        primary = "; ".join(_check_text(c) for c in r["checks"] if c["primary"])
        runs = ", ".join(f"{v} {k}" for k, v in r["runs"].items() if v or k == "done")
        converged = "yes" if r["converged"] else "no"
        rows.append([r["name"], r["verdict"], primary, runs, converged, f"{r['seconds']:.0f} s"])
    return rows


def summary_markdown(records: Iterable[Mapping[str, Any]]) -> str:
    """The Markdown table of `summary_rows`."""
    return md_table(HEADERS, summary_rows(records))
