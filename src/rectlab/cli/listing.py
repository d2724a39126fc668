"""``rectlab list activations|models|datasets|studies`` (the parser is in ``cli.parsers``).

The names come from the registries. Importing them imports torch (seconds), so rectlab ships their listing as
``catalog.json`` beside this module and answers from it when nothing else can register names: no ``--import``,
no installed ``rectlab.plugins`` entry point, and the registries not yet imported in this process. A test
checks that the file equals the registries; ``python -m rectlab.cli.listing`` rewrites it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ..plugins import GROUP
from .parsers import LIST_KINDS

CATALOG = Path(__file__).with_name("catalog.json")
# Keyword arguments every rectlab activation takes; not worth a column.
_COMMON_PARAMS = ("self", "inplace", "backend")
_REGISTRY_MODULES = ("rectlab.activations", "rectlab.models", "rectlab.data", "rectlab.reproduce")


def _plain(text: str) -> str:
    """Docstring markup as terminal text: ``x``, `x`, [`x`][a.b.x] and `x` all become x."""
    text = re.sub(r":\w+:`~([^`]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = re.sub(r":\w+:`([^`]+)`", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\[[\w.]+\]", r"\1", text)
    return text.replace("`", "")


def _first_line(obj: object) -> str:
    doc = (inspect.getdoc(obj) or "").strip()
    return _plain(" ".join(doc.split("\n\n", 1)[0].split()))


def _params(cls: Any) -> str:
    """``beta=1.0, gamma=...``: what ``NAME:key=value`` can set."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return ""
    shown = [p for p in params if p.name not in _COMMON_PARAMS and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in shown)


def entries(kind: str) -> list[list[str]]:
    """``[name, description(, parameters)]`` rows of one kind, read from the registries (this imports torch)."""
    # The registries are imported here, not at the top: the catalogue answers most calls without them.
    if kind == "activations":
        from ..activations import ACTIVATIONS

        return [[n, _first_line(c), _params(c)] for n, c in ACTIVATIONS.items()]
    if kind == "models":
        from ..models import MODELS

        return [[n, _first_line(c)] for n, c in MODELS.items()] + [
            ["tv:NAME", "any torchvision classification model, e.g. tv:resnet18 (adapted to the data)"],
            ["timm:NAME", "any timm model, e.g. timm:convnext_tiny (pip install timm; adapted to the data)"],
        ]
    if kind == "datasets":
        from ..data import DATASETS

        return [[n, getattr(s, "summary", None) or s.title] for n, s in DATASETS.items()]
    from ..reproduce import STUDIES

    return [[n, s.summary] for n, s in STUDIES.items()]


def catalog() -> dict[str, list[list[str]]]:
    """Every kind's rows, from the registries: what ``catalog.json`` holds."""
    return {kind: entries(kind) for kind in LIST_KINDS}


def write_catalog(path: Path = CATALOG) -> Path:
    """Rewrite ``catalog.json`` from the registries (run ``python -m rectlab.cli.listing`` after adding a name)."""
    path.write_text(json.dumps(catalog(), indent=1, ensure_ascii=False) + "\n")
    return path


def _registries_needed(imports: list[str]) -> bool:
    """Whether names beyond rectlab's own may exist (plugins), or the registries are loaded anyway."""
    if imports or any(name in sys.modules for name in _REGISTRY_MODULES):
        return True
    return bool(metadata.entry_points(group=GROUP))


def rows(kind: str, imports: list[str] | None = None) -> list[list[str]]:
    """The rows ``rectlab list KIND`` prints: from the catalogue when it can answer, else the registries."""
    if not _registries_needed(list(imports or [])) and CATALOG.is_file():
        return json.loads(CATALOG.read_text())[kind]
    return entries(kind)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console  # rich takes 0.2 s to import; this command answers in well under a second
    from rich.table import Table

    con = Console()
    for kind in [args.kind] if args.kind else LIST_KINDS:
        try:
            items = rows(kind, getattr(args, "imports", None))
        except ImportError:
            continue
        table = Table(title=kind, show_header=kind == "activations", box=None)
        table.add_column("name", style="bold", no_wrap=True)
        table.add_column("description")
        if kind == "activations":
            table.add_column("parameters (NAME:key=value)", style="dim")
        for row in items:
            table.add_row(*row)
        con.print(table)
    return 0


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    print(f"wrote {write_catalog()}")
