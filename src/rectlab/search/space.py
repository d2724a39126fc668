"""The search space: core units ``b(u1(x1), u2(x2))`` repeated once or twice (Ramachandran et al. 2017,
arXiv 1710.05941, figure 1).

One core unit: ``b1(u1(x), u2(x))``. Two core units: the second takes the first one's output and ``x``,
``b2(u3(b1(u1(x), u2(x))), u4(x))``. A candidate is the tuple of its operation names, e.g.
``("scale", "x", "sigmul")`` for ``sigmoid(beta*x)*x`` (Swish).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..errors import InputError
from .expr import Expr, render
from .ops import BINARY, UNARY, X

__all__ = ["Candidate", "SearchSpace"]


@dataclass(frozen=True)
class Candidate:
    """One point of the space: its operations and the expression they build."""

    ops: tuple[str, ...]
    expr: Expr

    @property
    def text(self) -> str:
        """The canonical expression (the activation's name after ``search:``)."""
        return render(self.expr)


@dataclass(frozen=True)
class SearchSpace:
    """Which unary and binary functions, and how many core units.

    Args:
        unary: names from `rectlab.search.ops.UNARY` (default: all 25 of the paper).
        binary: names from `rectlab.search.ops.BINARY` (default: all 10 of the paper).
        units: 1 or 2 core units (a list searches both sizes).
    """

    unary: tuple[str, ...] = tuple(UNARY)
    binary: tuple[str, ...] = tuple(BINARY)
    units: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        for kind, names, table in (("unary", self.unary, UNARY), ("binary", self.binary, BINARY)):
            if not names:
                raise InputError(f"the search space needs at least one {kind} function; known: {', '.join(table)}")
            bad = [n for n in names if n not in table]
            if bad:
                raise InputError(f"unknown {kind} function(s) {bad}; known: {', '.join(table)}")
            if len(set(names)) != len(names):
                raise InputError(f"{kind} functions listed twice: {list(names)}")
        if not self.units or any(u not in (1, 2) for u in self.units):
            raise InputError(f"units must be 1, 2 or [1, 2], got {list(self.units)}")

    @classmethod
    def from_dict(cls, d: dict) -> SearchSpace:
        """From ``{"unary": [...], "binary": [...], "units": 1 | [1, 2]}`` (missing keys: the paper's lists)."""
        bad = set(d) - {"unary", "binary", "units"}
        if bad:
            raise InputError(f"unknown search-space key(s) {sorted(bad)}; valid: unary, binary, units")
        units = d.get("units", 1)
        return cls(
            tuple(d.get("unary", UNARY)),
            tuple(d.get("binary", BINARY)),
            (units,) if isinstance(units, int) else tuple(units),
        )

    def size(self) -> int:
        """Raw candidates (before screening and merging), counting symmetric binaries once per unordered pair."""
        u = len(self.unary)
        one = sum(u * (u + 1) // 2 if BINARY[b].symmetric else u * u for b in self.binary)
        return sum(one if k == 1 else one * one for k in self.units)

    def build(self, ops: Sequence[str]) -> Candidate:
        """The candidate of an operation tuple (3 names per core unit: u1, u2, b)."""
        if len(ops) not in (3, 6):
            raise InputError(f"a candidate has 3 operations per core unit, got {list(ops)}")
        out: Expr = X
        for k in range(len(ops) // 3):
            u1, u2, b = ops[3 * k : 3 * k + 3]
            out = BINARY[b].build(UNARY[u1].build(out), UNARY[u2].build(X))
        return Candidate(tuple(ops), out)

    def _units(self) -> Iterator[tuple[str, str, str]]:
        for b in self.binary:
            pairs = (
                itertools.combinations_with_replacement(self.unary, 2)
                if BINARY[b].symmetric
                else itertools.product(self.unary, repeat=2)
            )
            for u1, u2 in pairs:
                yield u1, u2, b

    def enumerate(self) -> Iterator[Candidate]:
        """Every candidate, in a fixed order (one core unit first)."""
        units = list(self._units())
        for k in sorted(self.units):
            if k == 1:
                for unit in units:
                    yield self.build(unit)
            else:
                for first, second in itertools.product(units, repeat=2):
                    yield self.build(first + second)

    def sample(self, rng: random.Random) -> Candidate:
        """One candidate drawn uniformly over operation tuples (of a uniformly drawn number of units)."""
        k = rng.choice(sorted(self.units))
        ops: list[str] = []
        for _ in range(k):
            ops += [rng.choice(self.unary), rng.choice(self.unary), rng.choice(self.binary)]
        return self.build(ops)

    def describe(self) -> str:
        units = " or ".join(map(str, sorted(self.units)))
        return (
            f"{units} core unit(s); {len(self.unary)} unary ({', '.join(UNARY[u].paper for u in self.unary)}) "
            f"and {len(self.binary)} binary ({', '.join(BINARY[b].paper for b in self.binary)}) functions; "
            f"{self.size():,} raw candidates"
        )
