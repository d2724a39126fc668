"""``rectlab reproduce NAME --scale quick|full``: test a paper's claim and report a verdict; ``--list`` lists them
(the parser is in ``cli.parsers``)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import reproduce
from ..errors import InputError
from ..files import write_text
from ..reproduce import studies_dir
from ..reproduce.budget import run_budget_check
from ..reproduce.papers import ALL
from ..reproduce.summary import load_records, results_markdown, summary_markdown
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
        if args.budget_check:
            _budget_check(name, args, out, con)
            continue
        report = reproduce.run(
            name, args.scale, out, studies=args.studies, dataset=args.dataset, console=con, **execution_options(args)
        )
        style = {"reproduced": "green", "not reproduced": "red", "contradicted": "red"}.get(report.verdict, "yellow")
        con.print(f"[bold]{name}[/] ({args.scale}): [{style}]{report.verdict}[/] — {report.reason}", soft_wrap=True)
        for check in report.checks:
            stable = "" if check.stability is None else f" (stability {check.stability:.2f})"
            con.print(f"  • {check.claim}: {check.verdict}{stable}", soft_wrap=True)
        con.print(f"report: {report.html.resolve()} ({report.seconds:.0f} s)")
        outs.append(report.out)
    if len(names) > 1 and not args.budget_check:
        _write_summary(args, outs, con)
    return 0


def _budget_check(name: str, args: argparse.Namespace, out: str | None, con) -> None:
    repro = reproduce.get(name)
    if not repro.parts:
        con.print(f"{name}: a custom runner without an epoch budget; no budget check")
        return
    made = run_budget_check(
        repro,
        args.scale,
        out or Path("runs") / f"repro-{name}-{args.scale}",
        studies=args.studies,
        console=con,
        **execution_options(args),
    )
    for key, record in made.items():
        state = "passed" if record["passed"] else "FAILED"
        shifts = ", ".join(f"{v['shift']:+.3f}" for v in record["cells"].values())
        con.print(
            f"{key}: {state} ({record['metric']} at {record['epochs'][1]} vs {record['epochs'][0]} epochs, "
            f"tolerance ±{record['tolerance']:g}; shifts {shifts})",
            soft_wrap=True,
        )


def _write_summary(args: argparse.Namespace, outs: list, con) -> None:
    records = load_records(outs)
    path = (Path(args.out) if args.out else Path("runs")) / f"summary-{args.scale}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, summary_markdown(records) + "\n")
    con.print(f"summary of {len(records)} reproductions: {path.resolve()}")
    target = args.results or (str(studies_dir(args.studies) / "RESULTS.md") if args.scale == "quick" else None)
    if target and target != "none":
        command = " ".join(
            ["rectlab reproduce all", f"--scale {args.scale}"]
            + ([f"--out {shlex.quote(args.out)}"] if args.out else [])
        )
        write_text(
            Path(target),
            results_markdown(records, scale=args.scale, command=command, workers=getattr(args, "workers", 1) or 1),
        )
        con.print(f"results table: {Path(target).resolve()}")
