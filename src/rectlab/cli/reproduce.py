"""``rectlab reproduce NAME --scale quick|full``: test a paper's claim and report a verdict; ``--list`` lists them
(the parser is in ``cli.parsers``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import reproduce
from ..errors import InputError
from ..reproduce.papers import ALL
from ..reproduce.summary import load_records, summary_markdown
from .common import console, execution_options


def _list() -> int:
    table = Table(title="reproductions (rectlab reproduce NAME --scale quick|full)", show_header=False, box=None)
    table.add_column("name", style="bold")
    table.add_column("summary")
    for repro in ALL:
        table.add_row(repro.name, repro.summary)
    Console().print(table)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    if not args.name:
        raise InputError("name a reproduction (one of: " + ", ".join(reproduce.names()) + ") or pass --list")
    names = reproduce.names() if args.name == "all" else [args.name]
    for name in names:
        reproduce.get(name)  # unknown names fail before anything runs, listing the known ones
    con = console()
    outs = []
    for name in names:
        out = args.out if len(names) == 1 else (str(Path(args.out) / name) if args.out else None)
        report = reproduce.run(name, args.scale, out, studies=args.studies, dataset=args.dataset, console=con,
                               **execution_options(args))
        style = {"reproduced": "green", "not reproduced": "red"}.get(report.verdict, "yellow")
        con.print(f"[bold]{name}[/] ({args.scale}): [{style}]{report.verdict}[/] — {report.reason}", soft_wrap=True)
        for check in report.checks:
            con.print(f"  • {check.claim}: {check.verdict}", soft_wrap=True)
        con.print(f"report: {report.html.resolve()} ({report.seconds:.0f} s)")
        outs.append(report.out)
    if len(names) > 1:
        table = summary_markdown(load_records(outs))
        path = (Path(args.out) if args.out else Path("runs")) / f"summary-{args.scale}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table + "\n")
        con.print(f"summary of {len(names)} reproductions: {path.resolve()}")
    return 0
