"""``rectlab bench kernels|train|study|overhead|gpu``: benchmarks (they measure and print; they are not tests).

The ``bench`` parser (``cli.parsers``) takes the benchmark's name and leaves its options to the benchmark's own
parser, built here from ``rectlab.bench.<name>.add_arguments`` when the command runs.
"""

from __future__ import annotations

import argparse
import importlib

from .parsers import BENCHES


def run(args: argparse.Namespace) -> int:
    parser = argparse.ArgumentParser(prog=f"rectlab bench {args.bench}", description=BENCHES[args.bench])
    try:
        module = importlib.import_module(f"rectlab.bench.{args.bench}")  # the one benchmark asked for
    except ImportError:
        raise RuntimeError(f"benchmark {args.bench!r} is not available in this installation") from None
    module.add_arguments(parser)
    bench_args = parser.parse_args(args.bench_args)
    for key, value in vars(args).items():  # --debug, --import ... from the main parser
        if not hasattr(bench_args, key):
            setattr(bench_args, key, value)
    return int(module.run(bench_args) or 0)
