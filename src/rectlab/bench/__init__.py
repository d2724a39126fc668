"""Benchmarks (they measure and print; they are not tests): ``rectlab bench kernels|train|study|gpu``.

Each module exposes ``add_arguments(parser)`` and ``run(args) -> int``; :mod:`rectlab.cli.bench` wires
them into the command line.
"""
