"""Helpers shared by subcommands."""

from __future__ import annotations

import argparse
from typing import Any


def csv_list(text: str) -> list[str]:
    """Split at the commas outside parentheses, so ``relu,search:max(x,tanh(x))`` is two items."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    items = [t.strip() for t in [*parts, text[start:]] if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list, e.g. relu,prelu,gelu")
    return items


def float_list(text: str) -> list[float]:
    try:
        return [float(t) for t in csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_execution_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the spec's, else auto)")
    p.add_argument("--data-dir", default=None, help="where datasets are looked for (also $RECTLAB_DATA)")
    p.add_argument("--executor", default="local", choices=("local", "processes", "ray"),
                   help="how runs are executed (default local: one after another)")
    p.add_argument("--workers", "--runs-per-gpu", dest="workers", type=int, default=1,
                   help="runs at a time with --executor processes/ray (several small runs share one GPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def console() -> Any:
    """A rich console; when output goes to a file or pipe, wide enough for the results table."""
    from rich.console import Console

    con = Console()
    if not con.is_terminal:
        con = Console(width=max(con.width, 150))
    return con
