"""One table over several reproductions (``rectlab reproduce all``): verdict, primary evidence, runs and time.

Reads the ``verdict.json`` records written by `rectlab.reproduce.runner.run_reproduction`, so the table can
be rebuilt from finished output folders. `results_markdown` writes the whole ``RESULTS.md`` that
``rectlab reproduce all --scale quick`` keeps beside the specs.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..report.markup import md_table
from .core import FRAGILE, STUDY_RULE, VERDICTS

__all__ = ["HEADERS", "load_records", "results_markdown", "summary_markdown", "summary_rows"]

HEADERS = [
    "study",
    "verdict",
    "primary checks: label (stability) — estimate [CI], MDE, margin, n run/planned",
    "runs done / diverged / stalled / failed",
    "time",
]


def load_records(folders: Iterable[str | Path]) -> list[dict[str, Any]]:
    """The ``verdict.json`` of each folder that has one, in the given order."""
    return [json.loads((Path(f) / "verdict.json").read_text()) for f in folders if (Path(f) / "verdict.json").is_file()]


def _num(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _margin(c: Mapping[str, Any]) -> str:
    if c.get("margin") is None:
        return ""
    if c.get("null"):  # a rate claim: threshold and claimed level
        sign = 1 if c.get("kind") == "higher" else -1
        return f", threshold {c['null']:g}, level {c['null'] + sign * c['margin']:g}"
    return f", margin {c['margin']:g}"


def _check_text(c: Mapping[str, Any]) -> str:
    stability = c.get("stability")
    fragile = ", fragile" if stability is not None and stability < FRAGILE else ""
    label = c["verdict"] + ("" if stability is None else f" ({stability:.2f}{fragile})")
    planned = f"/{c['n_planned']}" if c.get("n_planned") else ""
    if c["estimate"] is None:
        return f"{label}: {c['claim']}"
    lo, hi = c["ci"]
    sign = "" if c.get("null") else "+"
    return (
        f"{label}: {c['claim']} — {c['estimate']:{sign}.2f} [{_num(lo)}, {_num(hi)}], MDE {_num(c['mde'])}"
        f"{_margin(c)}, n={c['n']}{planned}"
    )


def _runs(r: Mapping[str, Any]) -> str:
    runs = r["runs"]
    main = " / ".join(str(runs.get(k, 0)) for k in ("done", "diverged", "stalled", "failed"))
    other = ", ".join(f"{v} {k}" for k, v in runs.items() if k not in ("done", "diverged", "stalled", "failed") and v)
    return main + (f" ({other})" if other else "")


def summary_rows(records: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """One row per reproduction."""
    rows = []
    for r in records:
        primary = "; ".join(_check_text(c) for c in r["checks"] if c["primary"])
        rows.append([r["name"], r["verdict"], primary, _runs(r), f"{r['seconds']:.0f} s"])
    return rows


def summary_markdown(records: Iterable[Mapping[str, Any]]) -> str:
    """The Markdown table of `summary_rows`."""
    return md_table(HEADERS, summary_rows(records))


def results_markdown(records: Sequence[Mapping[str, Any]], *, scale: str, command: str, workers: int = 2) -> str:
    """The whole ``RESULTS.md``: how the numbers were made (command, CPU model, versions), how to read them, the
    tally and one table of every study."""
    cpus = sorted({str(r.get("cpu", "unknown")) for r in records})
    versions: Mapping[str, Any] = next((r["versions"] for r in records if r.get("versions")), {})
    total = sum(float(r["seconds"]) for r in records)
    tally = Counter(r["verdict"] for r in records)
    tally_text = ", ".join(f"{tally[v]} {v}" for v in VERDICTS if tally[v])
    fragile = sum(1 for r in records for c in r["checks"] if c["primary"] and c.get("fragile"))
    version_text = ", ".join(f"{k} {v}" for k, v in versions.items()) or "unknown versions"
    lines = [
        f"# Reproduction results ({scale} scale)",
        "",
        f"Generated whole by `{command}` ({workers} single-threaded worker processes) on "
        f"{time.strftime('%Y-%m-%d')}: {len(records)} studies on {' / '.join(cpus)}, {version_text}. The full "
        "reports (claim, published numbers, what the setting changes from the paper, the design, per-seed tables, "
        "budget checks, plots, `verdict.json`) are in each study's output folder; run the command to regenerate "
        "them and this file.",
        "",
        "**Per-seed numbers differ across CPU types.** Floating-point rounding depends on the instruction set and "
        "the kernels PyTorch picks for it (e.g. AVX2 vs AVX-512), so the same command on another CPU model gives "
        "other per-seed values, and a label near a boundary can change; on the same CPU type it gives the same "
        "numbers. The stability column says how often a label survives resampling the seeds.",
        "",
        "**How to read them.** Each primary claim declares in its spec, before running, its margin (the smallest "
        "effect that counts as the paper's) or, for a rate, its threshold and claimed level, and the study's alpha "
        "(0.05, Holm-corrected over its primary claims). Labels, judged on the interval at Holm's level: "
        "*reproduced* (significant in the claimed direction, the interval reaches the claimed size), *weaker than "
        "claimed* (significant, but the interval excludes the claimed size), *not reproduced* (not significant, and "
        "the interval excludes the claimed size), *contradicted* (significant in the opposite direction), "
        "*inconclusive* (otherwise; the report says what n would decide). 'Comparable' and 'does not improve' "
        "claims: reproduced when the 90% interval lies inside the margin, contradicted when outside. "
        f"{STUDY_RULE} MDE: minimum detectable effect at 80% power at the level used. Stability: the share of "
        f"1,000 seed-bootstrap resamples that give the same label (fragile below {FRAGILE:g}). Runs: done / "
        "diverged (loss NaN or infinite) / stalled (training loss within 5% of chance at every epoch) / failed. "
        "Time: wall-clock time of each study.",
        "",
        f"**Tally:** {tally_text} of {len(records)}; {fragile} primary label(s) fragile; all {len(records)} studies "
        f"took {total:.0f} s ({total / 60:.0f} min).",
        "",
        summary_markdown(records),
        "",
    ]
    return "\n".join(lines)
