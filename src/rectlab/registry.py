"""A small name -> object registry shared by activations, models, datasets and studies.

Modelled on torchvision's ``models/_api.py``: registering a name twice is an error unless
``override=True`` is passed, and an unknown name produces an error that lists the known ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from .errors import InputError, InputTypeError, RectlabError
from .plugins import load_entry_points

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError"]


class UnknownNameError(RectlabError, KeyError, ValueError):
    """Raised when a registry lookup fails; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Maps lower-case dashed names to objects (classes or factories).

    Args:
        kind: what the registry holds, used in error messages ("activation", "model", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None, *, override: bool = False) -> Any:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted.

        Raises:
            ValueError: if ``name`` is already registered and ``override`` is False.
        """
        key = self._normalize(name)

        def add(item: T) -> T:
            if key in self._items and not override:
                raise InputError(f"{self.kind} {key!r} is already registered; pass override=True to replace it")
            self._items[key] = item
            return item

        if obj is None:
            return add
        return add(obj)

    def get(self, name: str) -> T:
        """Return the object registered under ``name``.

        Raises:
            UnknownNameError: naming the known entries (and the closest match, if any).
        """
        key = self._normalize(name)
        if key not in self._items:
            _load_plugins()  # a name a third-party package registers through the rectlab.plugins entry points
        try:
            return self._items[key]
        except KeyError:
            raise UnknownNameError(self._unknown_message(name)) from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the registered class or factory with the given arguments."""
        factory = self.get(name)
        if not callable(factory):
            raise InputTypeError(f"{self.kind} {name!r} is not callable")
        return factory(*args, **kwargs)

    def names(self) -> list[str]:
        """All registered names, sorted (including those of ``rectlab.plugins`` entry points)."""
        _load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._normalize(name) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        _load_plugins()
        return sorted(self._items.items())

    @staticmethod
    def _normalize(name: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise InputTypeError(f"registry names are non-empty strings, got {name!r}")
        return name.strip().lower().replace("_", "-")

    def _unknown_message(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(str(name).lower(), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(known)}"


def _load_plugins() -> None:
    load_entry_points()
