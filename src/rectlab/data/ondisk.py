"""The shared life cycle of datasets stored as files: find a complete copy, else download one, then read it.

Format modules (`idx`, `cifar`, `svhn`) subclass `OnDiskSpec` and only
implement `OnDiskSpec.read`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from ..errors import InputTypeError
from . import download as _download
from . import locate
from .core import DataError, DatasetNotFoundError, DatasetSpec, LoadedData, in_memory_data

__all__ = ["OnDiskSpec", "Resource"]


@dataclass(frozen=True)
class Resource:
    """One file to download: its name, md5 and mirrors; ``extract`` = a tar archive to unpack in place."""

    filename: str
    md5: str | None
    urls: tuple[str, ...]
    extract: bool = False


@dataclass(frozen=True)
class OnDiskSpec(DatasetSpec):
    """A dataset made of files in a folder (see `locate` for the search order).

    Attributes:
        required: the files a complete copy has, relative to its folder; each entry is a group of
            acceptable names (``("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")``).
        resources: what to download to obtain ``required``.
        sizes: the published (train, test) counts, checked after reading; None to skip the check.
        aliases: sub-folders of a search root where other tools keep the files.
        system_dirs: folders a system package installs the files into.
        files_hint: how to lay the files out in a FOLDER, in words, for the "how to get it" message.
        install_hint: another way to get the files (a system package), or "".
    """

    name: str
    title: str
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    flip: bool
    crop_padding: int
    classes: tuple[str, ...]
    required: tuple[tuple[str, ...], ...]
    resources: tuple[Resource, ...]
    sizes: tuple[int, int] | None
    files_hint: str
    aliases: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()
    install_hint: str = ""

    # -- finding ------------------------------------------------------------------------------
    def candidates(self, data_dir: str | Path | None = None) -> list[tuple[Path, str]]:
        """Every folder searched, in order, with where it came from."""
        return locate.candidate_dirs(data_dir, self.name, self.aliases, self.system_dirs)

    def missing(self, folder: Path) -> list[str]:
        """The required files ``folder`` lacks, each as its acceptable names joined by "or"."""
        return [" or ".join(group) for group in self.required if not any((folder / n).is_file() for n in group)]

    def find(self, data_dir: str | Path | None = None) -> Path | None:
        for folder, _ in self.candidates(data_dir):
            if folder.is_dir() and not self.missing(folder):
                return folder
        return None

    def file(self, folder: Path, group: int) -> Path:
        """The path of required file number ``group`` in ``folder`` (the first acceptable name present)."""
        names = self.required[group]
        for name in names:
            if (folder / name).is_file():
                return folder / name
        raise DataError(f"{folder} has none of {', '.join(names)}")

    # -- loading ------------------------------------------------------------------------------
    def load(self, data_dir: str | Path | None = None, download: bool = True, **options: Any) -> LoadedData:
        if options:
            raise InputTypeError(f"dataset {self.name!r} takes no options, got {', '.join(sorted(options))}")
        folder = self.find(data_dir)
        if folder is None:
            if not download:
                raise self.not_found(data_dir, "Downloading is off (download=False).")
            try:
                folder = self.download(data_dir)
            except _download.DownloadError as e:
                raise self.not_found(data_dir, f"Downloading failed: {e}") from None
        return self.read(folder)

    def read(self, folder: Path) -> LoadedData:
        """Read a complete copy in ``folder``; raises [`DataError`][rectlab.data.DataError] for bad files."""
        raise NotImplementedError

    def assemble(
        self,
        folder: Path,
        train: tuple[Tensor, Tensor],
        test: tuple[Tensor, Tensor],
        classes: tuple[str, ...] | None = None,
    ) -> LoadedData:
        """Validate tensors read from ``folder`` against this spec and wrap them in
        [`LoadedData`][rectlab.data.LoadedData]."""
        return in_memory_data(
            name=self.name,
            source=folder,
            num_classes=self.num_classes,
            image_size=self.image_size,
            in_channels=self.in_channels,
            flip=self.flip,
            crop_padding=self.crop_padding,
            classes=self.classes if classes is None else classes,
            train=train,
            test=test,
            sizes=self.sizes,
        )

    def download(self, data_dir: str | Path | None = None) -> Path:
        """Download into ``<download root>/<name>/`` and return the folder holding the files.

        Raises:
            DownloadError: if a file cannot be fetched or unpacked.
        """
        dest = locate.download_root(data_dir) / self.name
        for resource in self.resources:
            target = dest / resource.filename
            if not resource.extract and target.is_file():
                continue  # fetched by an earlier, interrupted run (files appear only when complete)
            _download.fetch(resource.urls, target, resource.md5)
            if resource.extract:
                _download.extract_tar(target, dest)
                target.unlink()
        for rel in ("", *self.aliases):
            folder = dest / rel if rel else dest
            if folder.is_dir() and not self.missing(folder):
                return folder
        raise _download.DownloadError(f"the download into {dest} did not produce {', '.join(self.missing(dest))}")

    def not_found(self, data_dir: str | Path | None, reason: str) -> DatasetNotFoundError:
        """The "how to get it" error: where we looked, what was incomplete, and three ways to fix it."""
        looked = []
        incomplete = []
        for folder, _ in self.candidates(data_dir):
            if folder.is_dir():
                lacks = self.missing(folder)
                if len(lacks) < len(self.required):
                    incomplete.append(f"  {folder} has some of the files but lacks {', '.join(lacks)}")
        for root, why in locate.search_roots(data_dir):
            looked.append(f"  {root} ({why})")
        looked.extend(f"  {d} (system)" for d in self.system_dirs)
        subfolders = ", ".join(f"{p}/" for p in (self.name, *self.aliases))
        ways = []
        if self.install_hint:
            ways.append(f"  - {self.install_hint}")
        ways.append(
            f"  - {self.files_hint}, then pass --data-dir FOLDER (data_dir= in Python) or set {locate.ENV_VAR}=FOLDER"
        )
        ways.append(
            f"  - or load it where a network is reachable, with download=True: the files are saved in "
            f"{locate.download_root(data_dir) / self.name}"
        )
        lines = [
            f"{self.title} ({self.name}) was not found. Looked in these folders "
            f"(and, except system ones, their sub-folders {subfolders}):",
            *looked,
            *(["Incomplete copies:", *incomplete] if incomplete else []),
            reason,
            "To get it:",
            *ways,
        ]
        return DatasetNotFoundError("\n".join(lines))
