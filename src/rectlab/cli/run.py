"""``rectlab run STUDY.toml``: run a study spec and report (the parser is in ``cli.parsers``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..study import load_spec
from .compare import execute


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec, scale=args.scale)
    if args.out is None:
        args.out = str(Path("runs") / Path(args.spec).stem)
    return execute(spec, args)
