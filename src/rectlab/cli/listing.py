"""``rectlab list activations|models|datasets|studies``."""

from __future__ import annotations

import argparse

KINDS = ("activations", "models", "datasets", "studies")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered activations, models, datasets or studies")
    p.add_argument("kind", nargs="?", choices=KINDS, default=None, help="what to list (default: all)")
    p.set_defaults(func=run)


def _first_line(obj: object) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    return doc[0] if doc else ""


def entries(kind: str) -> list[tuple[str, str]]:
    if kind == "activations":
        from ..activations import ACTIVATIONS

        return [(n, _first_line(c)) for n, c in ACTIVATIONS.items()]
    if kind == "models":
        from ..models import MODELS

        return [(n, _first_line(c)) for n, c in MODELS.items()] + [
            ("tv:NAME", "any torchvision classification model, e.g. tv:resnet18 (adapted to the data)"),
            ("timm:NAME", "any timm model, e.g. timm:convnext_tiny (pip install timm; adapted to the data)"),
        ]
    if kind == "datasets":
        from ..data import DATASETS

        return [(n, _first_line(c)) for n, c in DATASETS.items()]
    from ..reproduce import STUDIES

    return [(n, s.summary) for n, s in STUDIES.items()]


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    for kind in [args.kind] if args.kind else KINDS:
        try:
            items = entries(kind)
        except ImportError:
            continue
        table = Table(title=kind, show_header=False, box=None)
        table.add_column("name", style="bold")
        table.add_column("description")
        for name, desc in items:
            table.add_row(name, desc)
        con.print(table)
    return 0
