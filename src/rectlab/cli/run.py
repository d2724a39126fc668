"""``rectlab run STUDY.toml``: run a study spec and report."""

from __future__ import annotations

import argparse

from .common import add_execution_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a study spec (TOML)", description="Run every pending run of a TOML study "
                       "spec (see rectlab/specs/ for examples), then print the table and write the report.")
    p.add_argument("spec", help="path of the study .toml")
    p.add_argument("--out", default=None, help="study directory (default runs/<spec name>)")
    p.add_argument("--scale", default=None, help="apply the spec's [scales.NAME] overrides (e.g. quick, full)")
    add_execution_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..study import load_spec
    from .compare import execute

    spec = load_spec(args.spec, scale=args.scale)
    if args.out is None:
        args.out = str(Path("runs") / Path(args.spec).stem)
    return execute(spec, args)
