"""Paper reproductions: each tests a published claim about rectifiers with honest statistics.

Examples:
    >>> from rectlab import reproduce
    >>> reproduce.names()[:3]
    ['dead-neurons', 'elu', 'erase-relu']
    >>> report = reproduce.run("xor-prelu", scale="quick", out="runs/xor")   # doctest: +SKIP
    >>> report.verdict                                                       # doctest: +SKIP
    'reproduced'

Each reproduction runs the study specs in ``rectlab/specs/`` (``rectlab reproduce NAME --scale quick|full``), then
writes ``reproduction.md`` / ``reproduction.html`` quoting the paper's claim with its published numbers, our
results (n seeds, mean, std, 95% CI, differences with p-values) and a verdict — reproduced, not reproduced or
inconclusive — with the rule and the evidence behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..registry import Registry
from .core import SCALES, VERDICTS, Analysis, ClaimCheck, Context, Part, Reproduction, Table, studies_dir
from .papers import ALL
from .runner import ReproductionReport, run_reproduction

__all__ = [
    "SCALES",
    "STUDIES",
    "VERDICTS",
    "Analysis",
    "ClaimCheck",
    "Context",
    "Part",
    "Reproduction",
    "ReproductionReport",
    "Table",
    "get",
    "names",
    "run",
    "studies_dir",
]


def _registry() -> Registry[Reproduction]:
    registry: Registry[Reproduction] = Registry("reproduction")
    for repro in ALL:
        registry.register(repro.name, repro)
    return registry


STUDIES: Registry[Reproduction] = _registry()


def names() -> list[str]:
    """Registered reproduction names, sorted."""
    return STUDIES.names()


def get(name: str) -> Reproduction:
    """The reproduction registered as ``name``.

    Raises:
        UnknownNameError: listing the known studies.
    """
    return STUDIES.get(name)


def run(name: str, scale: str = "quick", out: str | Path | None = None, **options: Any) -> ReproductionReport:
    """Run the reproduction ``name`` at ``scale``; see `rectlab.reproduce.runner.run_reproduction`."""
    return run_reproduction(get(name), scale, out, **options)
