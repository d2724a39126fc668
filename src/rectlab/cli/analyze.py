"""``rectlab analyze FILE``: a study's statistics, verdicts and report for results computed elsewhere."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..report.analysis import analyze
from ..report.render import print_table
from .common import console


def run(args: argparse.Namespace) -> int:
    pair_by = None if args.pair_by.lower() == "none" else args.pair_by
    result = analyze(
        args.file,
        metric=args.metric,
        by=args.by,
        baseline=args.baseline,
        pair_by=pair_by,
        tasks=args.tasks,
        goal=args.goal,
        name=args.name,
    )
    con = console()
    print_table(result.results, con)
    file = Path(args.file)
    report = result.report(Path(args.out) if args.out else file.parent / f"{file.stem}-analysis")
    con.print(f"report: {report.html.resolve()}")
    return 0
