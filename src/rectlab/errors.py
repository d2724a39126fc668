"""The base of every error rectlab raises for input or a state that the user can fix.

The command line prints a :class:`RectlabError` as one line that says what was wrong and how to fix it;
any other exception is a bug in rectlab (or in a plugin) and keeps its traceback. Each subclass also derives
from the built-in exception it refines (``ValueError``, ``KeyError``, ``RuntimeError`` ...), so callers that
catch those keep working.
"""

from __future__ import annotations

__all__ = ["RectlabError"]


class RectlabError(Exception):
    """Bad input or a fixable state; the message says what was wrong and how to fix it."""
