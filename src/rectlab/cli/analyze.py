"""``rectlab analyze FILE``: a study's statistics, verdicts and report for results computed elsewhere."""

from __future__ import annotations

import argparse

from .common import csv_list


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze", help="statistics and verdicts for a table of results (CSV, Parquet) computed elsewhere",
        description="Read one row per run from a CSV/TSV/Parquet file (exported from TensorBoard, W&B, MLflow or "
        "`rectlab export`), compare every value of --by with --baseline (paired by --pair-by), print the table "
        "and verdicts of a study, and write OUT/report.md and OUT/report.html.")
    p.add_argument("file", help="the table: one row per run (.csv, .tsv or .parquet)")
    p.add_argument("--metric", required=True, help="the column compared, e.g. test_error")
    p.add_argument("--by", required=True, help="the column whose values are compared, e.g. activation")
    p.add_argument("--baseline", required=True, help="the value of --by the others are compared with, e.g. relu")
    p.add_argument("--pair-by", default="seed",
                   help="the column that pairs runs across cells (default seed; 'none': unpaired, Welch's t-test)")
    p.add_argument("--tasks", type=csv_list, default=None,
                   help="columns whose values are separate tasks (dataset,model): compared within each, and "
                        "aggregated across them (IQM, probability of improvement, performance profiles)")
    p.add_argument("--goal", choices=("min", "max"), default="min",
                   help="min: lower is better (errors, losses; default); max: higher is better (accuracy)")
    p.add_argument("--out", default=None, help="where the report goes (default: FILE's folder / FILE's name-analysis)")
    p.add_argument("--name", default=None, help="the report's title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..report.analysis import analyze
    from ..report.render import print_table
    from .common import console

    pair_by = None if args.pair_by.lower() == "none" else args.pair_by
    result = analyze(args.file, metric=args.metric, by=args.by, baseline=args.baseline, pair_by=pair_by,
                     tasks=args.tasks, goal=args.goal, name=args.name)
    con = console()
    print_table(result.results, con)
    file = Path(args.file)
    report = result.report(Path(args.out) if args.out else file.parent / f"{file.stem}-analysis")
    con.print(f"report: {report.html.resolve()}")
    return 0
