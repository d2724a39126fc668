"""Activation search (Ramachandran, Zoph & Le 2017, "Searching for Activation Functions", arXiv 1710.05941).

Candidates are core units ``b(u1(x), u2(x))`` of the paper's unary and binary functions (one or two units),
compiled to torch expressions with learnable betas. The search screens them (rejects constant, non-finite
and exploding-at-init candidates, merges numerically equal ones), scores them by training a child network
through the study machinery (exhaustive, random or successive-halving strategies), and compares the winners
with ReLU and Swish over several seeds.

>>> from rectlab import search
>>> search.expression_of("search:x*sigmoid(beta*x)")
'x*sigmoid(beta*x)'
>>> config = search.load_config(search.default_config(), scale="quick")          # doctest: +SKIP
>>> result = search.run_search(config, "runs/search")                            # doctest: +SKIP
>>> result.winners[:1]                                                           # doctest: +SKIP

A winner is an activation by name: ``rectlab.activations.create("search:runs/search/1")`` or, stable across
files, ``"search:<expression>"``; ``rectlab compare --activations relu,search:runs/search/1``.
"""

from __future__ import annotations

from pathlib import Path

from ..study.spec import studies_dir
from .activation import PREFIX, SearchActivation, activation_class, canonical_name, expression_of, winner
from .config import STRATEGIES, SearchConfig, config_from_dict, load_config
from .expr import ExprError, parse, render
from .ops import BINARY, UNARY
from .run import RungResult, SearchResult, pool, run_final, run_search
from .screen import Screened, reject_reason, screen, swish_fit
from .space import Candidate, SearchSpace

__all__ = [
    "BINARY",
    "PREFIX",
    "STRATEGIES",
    "UNARY",
    "Candidate",
    "ExprError",
    "RungResult",
    "SearchActivation",
    "SearchConfig",
    "SearchResult",
    "SearchSpace",
    "Screened",
    "activation_class",
    "canonical_name",
    "config_from_dict",
    "default_config",
    "expression_of",
    "load_config",
    "parse",
    "pool",
    "reject_reason",
    "render",
    "run_final",
    "run_search",
    "screen",
    "swish_fit",
    "winner",
]


def default_config() -> Path:
    """The search settings shipped with rectlab: ``rectlab/specs/activation-search.toml``."""
    return studies_dir() / "activation-search.toml"
