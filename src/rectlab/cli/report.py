"""``rectlab report DIR``: table in the terminal, report.md and report.html in DIR."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="report a study directory", description="Read DIR/results.db, print the "
                       "table and verdict, and write DIR/report.md, DIR/report.html and DIR/plots/*.png.")
    p.add_argument("dir", help="study directory (the --out of compare/run)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report import collect, print_table, write_report
    from .common import console
    from .compare import print_problems

    con = console()
    results = collect(args.dir)
    print_table(results, con)
    report = write_report(args.dir, results)
    con.print(f"report: {report.html.resolve()}")
    print_problems(results, con)
    return 0
