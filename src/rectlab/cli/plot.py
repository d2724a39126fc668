"""``rectlab plot ACT [ACT ...] [--param k=v] [--derivative] [--out f.png|svg]``: look at activations (the parser
is in ``cli.parsers``)."""

from __future__ import annotations

import argparse

from ..activations import parse_kwargs, split_specs
from ..report.plots import activation


def run(args: argparse.Namespace) -> int:
    names = [name for text in args.activations for name in split_specs(text)]
    params = parse_kwargs(",".join(args.param), what=f"--param {' '.join(args.param)!r}")
    activation(names, params=params, derivative=args.derivative, x_range=tuple(args.range), out=args.out)
    print(f"wrote {args.out}")
    return 0
