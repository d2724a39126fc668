"""``rectlab report DIR``: table in the terminal, report.md and report.html in DIR (the parser is in
``cli.parsers``)."""

from __future__ import annotations

import argparse

from ..report import collect, print_table, write_report
from .common import console
from .compare import print_problems


def run(args: argparse.Namespace) -> int:
    con = console()
    results = collect(args.dir)
    print_table(results, con)
    report = write_report(args.dir, results)
    con.print(f"report: {report.html.resolve()}")
    print_problems(results, con)
    return 0
