"""One process per study directory: an advisory lock file, ``OUT/.rectlab.lock``, with the owner's PID and host.

The lock is an ``fcntl.flock`` on that file, so the kernel releases it when its owner dies, however it
dies: a lock left behind by a killed process is stale and the next process takes it over. The file's
content (``pid host time``) only names the owner in the message a second process gets.
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from ..errors import RectlabError, disk_error

__all__ = ["LOCK_NAME", "StudyDirError", "StudyLocked", "StudyLock", "prepare_out_dir"]

LOCK_NAME = ".rectlab.lock"


class StudyLocked(RectlabError, RuntimeError):
    """Another process is running a study in this directory."""


class StudyDirError(RectlabError, NotADirectoryError, PermissionError):
    """The study directory (``--out``) cannot be used: a file, not writable, or its lock file is in the way."""


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create the study directory (with parents) or say in one line why it cannot be used.

    Raises:
        StudyDirError: ``out_dir`` is empty, a file, or cannot be created or written.
    """
    if not str(out_dir).strip():
        raise StudyDirError("the study directory (--out) is empty; pass a folder name, e.g. --out runs/x")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise StudyDirError(f"--out {out} is a file, not a directory; pass a directory for the study")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StudyDirError(
            f"cannot create the study directory {out}: {e.strerror or e}; pass a writable --out"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise StudyDirError(f"cannot write to the study directory {out}; pass a writable --out")
    return out


class StudyLock:
    """Hold the lock of study directory ``out_dir`` (a context manager).

    Raises:
        StudyLocked: another live process holds it; the message names its PID and host.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.path = prepare_out_dir(out_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> StudyLock:
        try:
            import fcntl  # POSIX only: imported where a lock is taken
        except ImportError:  # pragma: no cover - not POSIX: the directory is not locked
            return self
        if self.path.is_dir():
            raise StudyDirError(
                f"{self.path} is a directory, but rectlab keeps its lock file there; move it aside "
                f"(mv {self.path} {self.path}.moved) and run the same command again"
            )
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            disk = disk_error(e, f"the lock file {self.path}")
            raise (disk or StudyDirError(f"cannot open the lock file {self.path}: {e.strerror or e}")) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(fd, 200, 0).decode(errors="replace").split()
            os.close(fd)
            pid, host = (owner + ["?", "?"])[:2]
            raise StudyLocked(
                f"{self.path.parent} is in use by another rectlab process (PID {pid} on {host}); wait for it to "
                f"finish, stop it, or use another --out"
            ) from None
        # A stale owner line (a process that died) is simply overwritten. The line only names the owner in
        # another process's message: on a full disk the lock holds without it.
        with suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with suppress(OSError):  # the owner line stays: it names a process that no longer holds the lock
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> StudyLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
