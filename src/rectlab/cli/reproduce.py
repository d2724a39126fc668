"""``rectlab reproduce NAME --scale quick|full``: test a paper's claim and report a verdict; ``--list`` lists them."""

from __future__ import annotations

import argparse

from ..errors import InputError
from ..study.spec import SCALES
from .common import add_execution_args, execution_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="reproduce a paper's claim about rectifiers (see --list)",
        description="Run the study specs of a paper reproduction (rectlab/specs/*.toml) at a scale, then write "
        "OUT/reproduction.md and OUT/reproduction.html: the claim with its published numbers, our results "
        "(n seeds, mean, std, 95%% CI, differences and p-values) and a verdict (reproduced / not reproduced / "
        "inconclusive) with its reason. Re-running the same command skips finished runs.",
    )
    p.add_argument("name", nargs="?", help="the reproduction (see --list), or 'all'")
    p.add_argument("--list", action="store_true", help="list the reproductions with one line each")
    p.add_argument("--scale", default="quick", choices=SCALES,
                   help="quick: CPU, minutes (default); full: GPU-sized, the paper's setting; smoke: a test run")
    p.add_argument("--out", default=None, help="output directory (default runs/repro-NAME-SCALE)")
    p.add_argument("--dataset", default=None,
                   help="run on this dataset instead of the spec's (e.g. fashion-mnist when CIFAR is missing)")
    p.add_argument("--studies", default=None,
                   help="folder of the study specs (default: the specs shipped with rectlab)")
    add_execution_args(p, dry_run=False)
    # both cores of a 2-core machine: two single-threaded worker processes (the quick budgets assume them)
    p.set_defaults(func=run, executor="processes", workers=2)


def _list() -> int:
    from rich.console import Console
    from rich.table import Table

    from ..reproduce.papers import ALL

    table = Table(title="reproductions (rectlab reproduce NAME --scale quick|full)", show_header=False, box=None)
    table.add_column("name", style="bold")
    table.add_column("summary")
    for repro in ALL:
        table.add_row(repro.name, repro.summary)
    Console().print(table)
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .. import reproduce
    from .common import console

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
        from ..reproduce.summary import load_records, summary_markdown

        table = summary_markdown(load_records(outs))
        path = (Path(args.out) if args.out else Path("runs")) / f"summary-{args.scale}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table + "\n")
        con.print(f"summary of {len(names)} reproductions: {path.resolve()}")
    return 0
