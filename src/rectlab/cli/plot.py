"""``rectlab plot ACT [ACT ...] [--param k=v] [--derivative] [--out f.png|svg]``: look at activations."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot", help="plot activations (and their derivatives) on one figure",
        description="Plot rectlab activations as their modules compute them. --derivative adds the gradient "
        "autograd computes (what training uses); where the backward is a surrogate gradient (HeLU) the "
        "forward's own derivative is drawn dotted beside it. Parameters: NAME:key=value,key=value (e.g. "
        "smelu:beta=0.5) or --param key=value for every activation that takes it (a = the negative slope of "
        "prelu and leaky-relu).",
    )
    p.add_argument("activations", nargs="+", metavar="ACT", help="activation names, e.g. relu helu smelu:beta=0.5")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter for every named activation that takes it (repeatable), e.g. a=0.25")
    p.add_argument("--derivative", action="store_true", help="add the derivative panel")
    p.add_argument("--range", type=float, nargs=2, default=(-4.0, 4.0), metavar=("LO", "HI"),
                   help="x range (default -4 4)")
    p.add_argument("--out", default="activations.png", help="image file: .png, .svg or .pdf (default activations.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report.plots import activation, parse_spec

    _, params = parse_spec("x:" + ",".join(args.param))
    activation(args.activations, params=params, derivative=args.derivative, x_range=tuple(args.range), out=args.out)
    print(f"wrote {args.out}")
    return 0
