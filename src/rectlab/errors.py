"""The base of every error rectlab raises for input or a state that the user can fix.

The command line prints a [`RectlabError`][rectlab.errors.RectlabError] as one line that says what was wrong and how to
fix it; any other exception is a bug in rectlab (or in a plugin) and keeps its traceback. Each subclass also derives
from the built-in exception it refines (``ValueError``, ``KeyError``, ``RuntimeError`` ...), so callers that
catch those keep working.

The general-purpose subclasses here cover input checks that have no error type of their own in their
module (a model's, an activation's or a study's own errors derive from `RectlabError` directly).
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "DISK_ERRNOS",
    "DiskError",
    "InputError",
    "InputTypeError",
    "MissingFileError",
    "MissingPackageError",
    "RectlabError",
    "UnavailableError",
    "disk_error",
]


class RectlabError(Exception):
    """Bad input or a fixable state; the message says what was wrong and how to fix it."""


class InputError(RectlabError, ValueError):
    """A value given to rectlab (an argument, a flag, a spec field, a file's content) is not valid."""


class InputTypeError(RectlabError, TypeError):
    """An argument of the wrong kind (a class where an instance is needed, an iterator where a list is)."""


class MissingFileError(RectlabError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class MissingPackageError(RectlabError, ImportError):
    """An optional package is not installed; the message gives the ``pip install`` line."""


class UnavailableError(RectlabError, RuntimeError):
    """Something asked for is not available here: a CUDA GPU, Triton, a Ray cluster, a feature of this torch."""


class DiskError(RectlabError, OSError):
    """The disk refused a write: it is full, read-only, or the file or folder is not writable.

    ``errno`` holds the operating system's error number (``errno.ENOSPC`` ...), ``filename`` the file.
    Everything committed before the error is kept; the message never advises deleting data.
    """

    def __init__(self, message: str, code: int | None = None, filename: str | None = None) -> None:
        super().__init__(message)
        self.errno = code
        self.filename = filename

    def __str__(self) -> str:  # the message, not OSError's "[Errno N] strerror: filename"
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple:  # keep errno and filename when sent from a worker process
        return (type(self), (str(self), self.errno, self.filename))


# Errors of the disk or the filesystem, not of rectlab: out of space or quota, read-only, no permission.
DISK_ERRNOS = (_errno.ENOSPC, _errno.EDQUOT, _errno.EROFS, _errno.EACCES, _errno.EPERM)


def disk_error(e: OSError, what: str) -> DiskError | None:
    """The one-line `DiskError` for an ``OSError`` of the disk (see ``DISK_ERRNOS``), else None.

    Args:
        e: the error raised by a write.
        what: what was being written, e.g. ``"the checkpoint runs/x/runs/ab12/checkpoint-3.pt"``.
    """
    if isinstance(e, DiskError):
        return e
    if e.errno in (_errno.ENOSPC, _errno.EDQUOT):
        reason = "no space left on the device" if e.errno == _errno.ENOSPC else "the disk quota is used up"
        fix = "free some space (or pass another --out) and run the same command again"
    elif e.errno == _errno.EROFS:
        reason, fix = "the file system is read-only", "use a writable --out, or remount it read-write"
    elif e.errno in (_errno.EACCES, _errno.EPERM):
        reason, fix = "permission denied", "make it writable for this user, or use another --out"
    else:
        return None
    return DiskError(
        f"cannot write {what}: {reason}; {fix} (everything already finished is kept)",
        e.errno,
        e.filename if isinstance(e.filename, str) else None,
    )
