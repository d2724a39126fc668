"""Search candidates as activations usable by name: ``search:<expression>`` or ``search:<RUN>/<k>``.

``rectlab.activations.get("search:sigmoid(beta*x)*x")`` returns a [`SearchActivation`][rectlab.search.SearchActivation]
subclass for that expression, built from the name alone, so every study worker process (spawned, or on a Ray
cluster) rebuilds the same function without pickling a closure or registering anything. The name
``search:RUN/k`` reads the k-th winner (1-based) of the search whose output folder is ``RUN``
(its ``search.json``); prefer the expression form in specs you keep, since it does not depend on a file.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import torch
from torch import Tensor, nn

from ..activations import Activation
from ..errors import InputError, InputTypeError, MissingFileError
from .expr import ExprError, evaluate, num_params, parse, render

__all__ = ["PREFIX", "SearchActivation", "activation_class", "canonical_name", "expression_of", "winner"]

PREFIX = "search:"
_RUN_RANK = re.compile(r"^(?P<run>.+)/(?P<rank>\d+)$")


class SearchActivation(Activation):
    """An activation found by (or written for) the search: ``expression`` applied elementwise.

    Subclasses made by [`activation_class`][rectlab.search.activation_class] set ``expression`` (canonical text). Each
    ``beta`` of the expression is a learnable scalar of this module (``self.beta``, one entry per parameter),
    initialized to ``beta``; as an activation parameter it is never weight-decayed (see
    [`rectlab.optim.param_groups`][rectlab.optim.param_groups]).

    Args:
        beta: initial value of every learnable parameter (the search uses 1).
        inplace: ignored.
        backend: "auto" or "torch" (there is no fused kernel for search expressions).
    """

    expression: str = ""

    def __init__(self, beta: float = 1.0, inplace: bool = False, backend: str = "auto") -> None:
        super().__init__(inplace, backend)
        if backend == "triton":
            raise InputError(
                f"search activation {self.expression!r} has no Triton kernel; use backend 'auto' or 'torch'"
            )
        if not self.expression:
            raise InputTypeError("SearchActivation is built by rectlab.search.activation_class(expression)")
        self._expr = parse(self.expression)
        n = num_params(self._expr)
        self.beta = nn.Parameter(torch.full((n,), float(beta))) if n else None

    def forward(self, x: Tensor) -> Tensor:
        betas = list(self.beta.to(x.dtype).unbind()) if self.beta is not None else []
        return evaluate(self._expr, x, betas)

    def _repr_fields(self) -> dict[str, object]:
        return {"expression": repr(self.expression)}


def expression_of(name: str) -> str:
    """The canonical expression a ``search:`` name (or a bare expression) stands for.

    Raises:
        ExprError: an invalid expression, or ``RUN/k`` naming a rank the search did not produce.
    """
    text = name[len(PREFIX) :] if name.lower().startswith(PREFIX) else name
    text = text.strip()
    m = _RUN_RANK.match(text)
    if m and (Path(m["run"]) / "search.json").is_file():
        return winner(m["run"], int(m["rank"]))
    return render(parse(text))


def canonical_name(name: str) -> str:
    """``search:`` + the canonical expression of ``name``."""
    return PREFIX + expression_of(name)


def winner(run: str | Path, rank: int = 1) -> str:
    """The canonical expression of the ``rank``-th winner (1-based) of the search in folder ``run``.

    Raises:
        FileNotFoundError: ``run`` holds no ``search.json``.
        ExprError: the search has fewer winners than ``rank``.
    """
    path = Path(run) / "search.json"
    if not path.is_file():
        raise MissingFileError(f"{path} not found: pass the --out folder of a `rectlab search` run")
    winners = json.loads(path.read_text()).get("winners", [])
    if not 1 <= rank <= len(winners):
        raise ExprError(
            f"the search in {run} has {len(winners)} winner(s); rank {rank} does not exist "
            f"(use search:{run}/1 ... search:{run}/{len(winners)})"
        )
    return winners[rank - 1]["expression"]


@functools.lru_cache(maxsize=4096)
def _class_for(expression: str) -> type[SearchActivation]:
    return type(
        "SearchActivation",
        (SearchActivation,),
        {"expression": expression, "__module__": __name__, "__doc__": f"Search activation {expression}."},
    )


def activation_class(name: str) -> type[SearchActivation]:
    """The activation class of ``search:<expression>`` / ``search:<RUN>/<k>`` (one class per expression).

    Raises:
        ExprError: an invalid expression (the message lists what the language allows).
    """
    return _class_for(expression_of(name))
