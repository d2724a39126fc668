"""Activation names with parameters: the one syntax every command line, study spec and Python call reads.

An activation is named ``NAME`` or ``NAME:key=value,key=value``: ``smelu:beta=0.5``, ``leaky-relu:negative_slope=0.2``,
``prelu:init=0.1``. Values are read as ``true``/``false``, integers, floats, and otherwise strings. In a
comma-separated list the parameters stay with their activation: ``relu,smelu:beta=0.5,gelu`` is three
activations, ``relu,smelu:beta=0.5,inplace=true,gelu`` too. Names with a prefix that a package builds by
name (``search:sigmoid(beta*x)*x``) carry no parameters: everything after the prefix is the name.

``rectlab compare --activations``, ``rectlab train --activation``, ``rectlab plot``, study specs
(``activation = "smelu:beta=0.5"``), the activation search's baselines and ``activations.create`` all read
names through [parse_spec][rectlab.activations.params.parse_spec]; ``--model-kwargs`` uses
[parse_kwargs][rectlab.activations.params.parse_kwargs], the same ``key=value`` reader.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import RectlabError
from ..registry import UnknownNameError

__all__ = ["PREFIXES", "ActivationSpecError", "format_spec", "parse_kwargs", "parse_spec", "parse_value", "split_specs"]

# Names with a prefix are built from the name itself by the package that owns the prefix (imported on first
# use), so worker processes rebuild them without a registration step: ``search:sigmoid(beta*x)*x``.
PREFIXES = {"search": "rectlab.search.activation"}

_KEY = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_-]*\s*=")


class ActivationSpecError(RectlabError, ValueError):
    """An activation name with malformed parameters; the message shows the syntax."""


def parse_value(text: str) -> Any:
    """``"true"`` -> True, ``"3"`` -> 3, ``"0.5"`` -> 0.5, anything else stays a string."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _split_commas(text: str) -> list[str]:
    """Split at the commas outside parentheses (search expressions such as ``max(x,tanh(x))`` hold commas)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _prefixed(name: str) -> bool:
    head, sep, _ = name.partition(":")
    return bool(sep) and head.strip().lower() in PREFIXES


def parse_kwargs(text: str, *, what: str | None = None) -> dict[str, Any]:
    """``"beta=0.5,inplace=true"`` -> ``{"beta": 0.5, "inplace": True}``; dashes in keys become underscores.

    Raises:
        ActivationSpecError: an item that is not ``key=value``, or a key given twice.
    """
    what = what or f"keyword arguments {text!r}"
    params: dict[str, Any] = {}
    for item in (p.strip() for p in _split_commas(text)):
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key.isidentifier():
            raise ActivationSpecError(
                f"{what}: {item!r} is not key=value; write e.g. smelu:beta=0.5 or --model-kwargs width=128,depth=3"
            )
        if key in params:
            raise ActivationSpecError(f"{what} sets {key!r} twice")
        params[key] = parse_value(value)
    return params


def parse_spec(text: str) -> tuple[str, dict[str, Any]]:
    """Split an activation name from its parameters: ``"smelu:beta=0.5"`` -> ``("smelu", {"beta": 0.5})``.

    Args:
        text: ``NAME``, ``NAME:key=value,...`` or a prefixed name (``search:<expression>``, returned whole).

    Returns:
        ``(name, params)``; ``params`` is empty for a plain or prefixed name.

    Raises:
        ActivationSpecError: parameters that are not ``key=value`` pairs, with the syntax to use.
        UnknownNameError: ``NAME:text`` without ``=`` whose prefix is not one of ``PREFIXES``.
    """
    if not isinstance(text, str):
        raise TypeError(f"an activation name is a string, got {type(text).__name__}")
    text = text.strip()
    name, sep, rest = text.partition(":")
    if not sep or _prefixed(text):
        return text, {}
    if not name.strip():
        raise ActivationSpecError(f"activation {text!r} has no name before ':'; write e.g. smelu:beta=0.5")
    if rest.strip() and "=" not in rest:  # NAME:something, no parameters: a prefix rectlab does not know
        raise UnknownNameError(
            f"unknown activation prefix {name.strip() + ':'!r} in {text!r} (known: "
            + ", ".join(p + ":" for p in PREFIXES)
            + "); parameters are written NAME:key=value, "
            "e.g. smelu:beta=0.5"
        )
    return name.strip(), parse_kwargs(rest, what=f"activation {text!r}")


def format_spec(name: str, params: dict[str, Any] | None = None) -> str:
    """The canonical text of a name with parameters: ``format_spec("smelu", {"beta": 0.5})`` -> ``"smelu:beta=0.5"``."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items())


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of activations, keeping each one's parameters with it.

    ``"relu,smelu:beta=0.5,inplace=true,gelu"`` -> ``["relu", "smelu:beta=0.5,inplace=true", "gelu"]``; commas
    inside parentheses do not split (``search:max(x,tanh(x))``).

    Raises:
        ActivationSpecError: an empty list, or ``key=value`` with no activation before it.
    """
    items: list[str] = []
    for part in (p.strip() for p in _split_commas(text)):
        if not part:
            continue
        if _KEY.match(part) and ":" not in part.split("=", 1)[0]:
            if not items or ":" not in items[-1] or _prefixed(items[-1]):
                raise ActivationSpecError(
                    f"{text!r}: the parameter {part!r} follows no activation with "
                    f"parameters; write NAME:key=value, e.g. smelu:beta=0.5"
                )
            items[-1] += "," + part
        else:
            items.append(part)
    if not items:
        raise ActivationSpecError("expected a comma-separated list of activations, e.g. relu,prelu,smelu:beta=0.5")
    return items
