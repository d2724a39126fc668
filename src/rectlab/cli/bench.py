"""``rectlab bench kernels|train|study|gpu``: benchmarks (they measure and print; they are not tests)."""

from __future__ import annotations

import argparse
import importlib

from ..errors import UnavailableError

BENCHES = {
    "kernels": "activation forward/backward time vs PyTorch eager and torch.compile, as a fraction of copy bandwidth",
    "train": "training-step images/s per activation on ResNet-20/56 at CIFAR shapes, ratio to ReLU",
    "study": "a small study run concurrently vs sequentially in a plain loop",
    "overhead": "a command's and a run's time besides training: the smallest study as a fresh process, and one "
    "5-epoch run split into build, training steps, evaluation and epoch-end work",
    "gpu": "the whole GPU verification in one call (GPU tests, self-check, kernels, train, study) with a "
    "PASS/MISS line per target, written to gpu-report.md and gpu-report.json (--device cpu: a reduced form)",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark (kernels, train, study, gpu)")
    bsub = p.add_subparsers(dest="bench", metavar="BENCH")
    bsub.required = True
    for name, help_text in BENCHES.items():
        bp = bsub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(f"rectlab.bench.{name}")
        except ImportError:
            bp.set_defaults(func=_missing(name))
            continue
        module.add_arguments(bp)
        bp.set_defaults(func=module.run)


def _missing(name: str):
    def run(args: argparse.Namespace) -> int:
        raise UnavailableError(f"benchmark {name!r} is not available in this installation")

    return run
