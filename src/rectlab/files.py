"""Files written whole or not at all: a temporary file next to the target, flushed to disk, then renamed.

A reader, or a process killed meanwhile, sees the old file or the new one, never half of one. A write that
fails removes its temporary file, and a disk that is full or read-only is reported as such
([DiskError][rectlab.errors.DiskError]). A temporary file left by a killed process (``NAME.tmp.PID`` whose
process is gone) is removed by the next write of ``NAME``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import disk_error

__all__ = ["atomic_path", "remove_stale_temporaries", "sha256_file", "temporary_name", "write_bytes", "write_text"]


def temporary_name(path: Path) -> Path:
    """``path``'s temporary file in this process: ``NAME.tmp.PID`` in the same folder (so the rename is atomic)."""
    return path.with_name(f"{path.name}.tmp.{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove ``NAME.tmp.PID`` files of ``path`` whose process no longer runs; returns them."""
    removed = []
    for tmp in path.parent.glob(f"{path.name}.tmp.*"):
        pid = tmp.name.rsplit(".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, what: str | None = None) -> Iterator[Path]:
    """Write ``path`` through a temporary file: the block writes the yielded path, which then replaces ``path``.

    Args:
        path: the file to write (its folder is created).
        what: how an error names it (default: the path).

    Raises:
        DiskError: the disk is full or read-only, or the folder is not writable (the temporary file is gone).

    Example:
        >>> with atomic_path("plot.png") as tmp:  # doctest: +SKIP
        ...     fig.savefig(tmp, format="png")
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        with suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            disk = disk_error(e, what or str(path))
            if disk is not None:
                raise disk from None
        raise


def write_bytes(path: str | Path, data: bytes, what: str | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (see `atomic_path`); returns the path."""
    with atomic_path(path, what) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str, what: str | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see `atomic_path`); returns the path."""
    return write_bytes(path, text.encode("utf-8"), what)


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
