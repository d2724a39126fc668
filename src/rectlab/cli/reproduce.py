"""``rectlab reproduce NAME --scale quick|full``: test a paper's claim and report a verdict; ``--list`` lists them."""

from __future__ import annotations

import argparse

from ..study.spec import SCALES
from .common import add_execution_args, execution_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="reproduce a paper's claim about rectifiers (see --list)",
        description="Run the study specs of a paper reproduction (rectlab/specs/*.toml) at a scale, then write "
        "OUT/reproduction.md and OUT/reproduction.html: the claim with its published numbers, our results "
        "(n seeds, mean, std, confidence intervals, differences and p-values) and a verdict (reproduced / weaker "
        "than claimed / not reproduced / contradicted / inconclusive) with its reason and stability. Re-running the "
        "same command skips finished runs. 'all --scale quick' also rewrites RESULTS.md beside the specs.",
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
    p.add_argument("--budget-check", action="store_true",
                   help="instead of the verdict: train the first 3 seeds of every cell at twice the epochs and record "
                        "in the specs folder (budget-checks.json) whether the metric moved by more than half the "
                        "margin; reports then show it")
    p.add_argument("--results", default=None,
                   help="with 'all': write the RESULTS.md table here (default at quick scale: RESULTS.md in the specs "
                        "folder; 'none' skips it)")
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
        raise ValueError("name a reproduction (one of: " + ", ".join(reproduce.names()) + ") or pass --list")
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
        report = reproduce.run(name, args.scale, out, studies=args.studies, dataset=args.dataset, console=con,
                               **execution_options(args))
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
    from pathlib import Path

    from .. import reproduce
    from ..reproduce.budget import run_budget_check

    repro = reproduce.get(name)
    if not repro.parts:
        con.print(f"{name}: a custom runner without an epoch budget; no budget check")
        return
    made = run_budget_check(repro, args.scale, out or Path("runs") / f"repro-{name}-{args.scale}",
                            studies=args.studies, console=con, **execution_options(args))
    for key, record in made.items():
        state = "passed" if record["passed"] else "FAILED"
        shifts = ", ".join(f"{v['shift']:+.3f}" for v in record["cells"].values())
        con.print(f"{key}: {state} ({record['metric']} at {record['epochs'][1]} vs {record['epochs'][0]} epochs, "
                  f"tolerance ±{record['tolerance']:g}; shifts {shifts})", soft_wrap=True)


def _write_summary(args: argparse.Namespace, outs: list, con) -> None:
    import shlex
    from pathlib import Path

    from ..reproduce import studies_dir
    from ..reproduce.summary import load_records, results_markdown, summary_markdown

    records = load_records(outs)
    path = (Path(args.out) if args.out else Path("runs")) / f"summary-{args.scale}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary_markdown(records) + "\n")
    con.print(f"summary of {len(records)} reproductions: {path.resolve()}")
    target = args.results or (str(studies_dir(args.studies) / "RESULTS.md") if args.scale == "quick" else None)
    if target and target != "none":
        command = " ".join(["rectlab reproduce all", f"--scale {args.scale}"]
                           + ([f"--out {shlex.quote(args.out)}"] if args.out else []))
        Path(target).write_text(results_markdown(records, scale=args.scale, command=command,
                                                 workers=getattr(args, "workers", 1) or 1))
        con.print(f"results table: {Path(target).resolve()}")
