"""Downloading dataset files: mirrors tried in order, short timeouts, md5-checked, written atomically.

A file appears under its final name only once it is complete and its checksum matches, so an
interrupted download (or two processes downloading at once) never leaves a half file behind
that a later run would mistake for data.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from ..errors import RectlabError

__all__ = ["DEFAULT_TIMEOUT", "DownloadError", "extract_tar", "fetch"]

log = logging.getLogger(__name__)

# Seconds a connection attempt or a single read may stall. Short, so a machine without a network
# fails in seconds with a useful message instead of hanging; a slow but live link still works.
DEFAULT_TIMEOUT = 15.0
_CHUNK = 1 << 20
_USER_AGENT = "rectlab (python urllib)"


class DownloadError(RectlabError):
    """Every mirror failed, or what came back was not the expected file."""


def fetch(urls: Sequence[str], dest: Path, md5: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download the first URL of ``urls`` that works to ``dest`` and return ``dest``.

    Raises:
        DownloadError: listing each URL with the reason it failed.
    """
    dest = Path(dest)
    errors = []
    for url in urls:
        try:
            _fetch_one(url, dest, md5, timeout)
            return dest
        except (OSError, http.client.HTTPException, DownloadError) as e:  # URLError and timeouts are OSErrors
            errors.append(f"{url}: {e}")
            log.info("download of %s failed: %s", url, e)
    raise DownloadError(f"could not download {dest.name}: " + "; ".join(errors))


def _fetch_one(url: str, dest: Path, md5: str | None, timeout: float) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", url, dest)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if md5 is not None and digest.hexdigest() != md5:
            raise DownloadError(f"checksum mismatch (md5 {digest.hexdigest()}, expected {md5})")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def extract_tar(archive: Path, dest_dir: Path) -> None:
    """Unpack ``archive`` into ``dest_dir``, replacing top-level entries of the same name.

    Unpacks into a scratch folder first and moves the result into place, so an interrupted
    extraction leaves no partial dataset folder.

    Raises:
        DownloadError: if the archive is unreadable.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=dest_dir, prefix=".extract-"))
    try:
        try:
            with tarfile.open(archive) as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(scratch, filter="data")  # refuses absolute paths, "..", device files
                else:  # Python < 3.10.12: check member paths ourselves
                    for member in tar.getmembers():
                        target = (scratch / member.name).resolve()
                        if not target.is_relative_to(scratch.resolve()) or not (member.isfile() or member.isdir()):
                            raise DownloadError(f"{archive} has an unsafe member {member.name!r}")
                    tar.extractall(scratch)  # noqa: S202 - members checked above
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DownloadError(f"{archive} is not a readable tar archive ({e})") from e
        for entry in scratch.iterdir():
            target = dest_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
