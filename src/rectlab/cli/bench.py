"""``rectlab bench gpu``: check rectlab on this machine's GPU in one command (see `rectlab.gpucheck`)."""

from __future__ import annotations

import argparse

HELP = ("check rectlab on this GPU: the fused kernels' self-check, their speed beside torch.nn, a training step; "
        "writes gpu-report.md and gpu-report.json (--device cpu: a reduced form)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="check rectlab on this machine's GPU (bench gpu)")
    bsub = p.add_subparsers(dest="bench", metavar="BENCH")
    bsub.required = True
    bp = bsub.add_parser("gpu", help=HELP, description=HELP)
    bp.add_argument("--device", default="auto", help="auto, cuda, cuda:N, or cpu for the reduced form")
    bp.add_argument("--out", default=".", help="folder for gpu-report.md and gpu-report.json (default: here)")
    bp.add_argument("--skip", default="", help="comma-separated stages to skip: selfcheck, kernels, train")
    bp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..gpucheck import run as check  # imports torch: loaded when the command runs

    return check(args)
