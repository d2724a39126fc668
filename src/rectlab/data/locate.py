"""Where dataset files are looked for, and where downloads go.

Search order, first complete copy wins:

1. ``data_dir`` (the ``--data-dir`` option / ``data_dir=`` argument),
2. ``$RECTLAB_DATA`` (one folder, or several separated by ``os.pathsep``),
3. the user cache, ``$XDG_CACHE_HOME/rectlab`` (default ``~/.cache/rectlab``),
4. system folders a package manager installs (e.g. Debian's ``/usr/share/datasets/fashion-mnist``).

Inside each of the first three roots a dataset may sit directly, in ``<root>/<name>/``, or in the
layout other tools use (``FashionMNIST/raw``, ``cifar-10-batches-py``), so copies made by
torchvision are found too. Downloads go to ``<data_dir or $RECTLAB_DATA or cache>/<name>/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ENV_VAR", "cache_root", "candidate_dirs", "download_root", "search_roots"]

ENV_VAR = "RECTLAB_DATA"


def cache_root() -> Path:
    """The per-user cache folder for rectlab's downloads (XDG base-directory convention)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "rectlab"


def _env_dirs() -> list[Path]:
    value = os.environ.get(ENV_VAR, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def search_roots(data_dir: str | Path | None) -> list[tuple[Path, str]]:
    """The user-controlled roots in search order, each with where it came from (for messages)."""
    roots: list[tuple[Path, str]] = []
    if data_dir is not None:
        roots.append((Path(data_dir).expanduser(), "data_dir"))
    roots.extend((p, f"${ENV_VAR}") for p in _env_dirs())
    roots.append((cache_root(), "user cache"))
    return roots


def download_root(data_dir: str | Path | None) -> Path:
    """Where a download goes: the folder the user named, else the first ``$RECTLAB_DATA`` entry, else the cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = _env_dirs()
    return env[0] if env else cache_root()


def candidate_dirs(
    data_dir: str | Path | None, name: str, aliases: Iterable[str] = (), system_dirs: Iterable[str | Path] = ()
) -> list[tuple[Path, str]]:
    """Every folder that may hold dataset ``name``, in search order, without duplicates.

    Args:
        aliases: sub-folders (relative to a root, or to ``<root>/<name>``) where other tools put the files.
        system_dirs: absolute folders searched last, as they are.
    """
    relative = ["", *aliases]
    seen: set[Path] = set()
    out: list[tuple[Path, str]] = []

    def add(path: Path, why: str) -> None:
        if path not in seen:
            seen.add(path)
            out.append((path, why))

    for root, why in search_roots(data_dir):
        for base in (root, root / name):
            for rel in relative:
                add(base / rel if rel else base, why)
    for system in system_dirs:
        add(Path(system), "system")
    return out
