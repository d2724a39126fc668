"""Image folders in the ImageNet layout: ``<root>/train/<class>/*.jpg`` and ``<root>/val/<class>/*.jpg``.

Too large to hold in memory, so the result carries torchvision ``ImageFolder`` datasets that
decode, augment and normalise each image as it is read (use a DataLoader with workers).
Train: random-resized crop + horizontal flip; val: resize to size/0.875 + center crop, the usual
ImageNet recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from . import locate
from .core import DataError, DatasetNotFoundError, DatasetSpec, LoadedData

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageFolderSpec", "transforms"]

# ImageNet statistics: the conventional normalisation for natural photos, and computing a
# folder's own statistics would mean decoding every image before training starts.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def transforms(image_size: int, mean: tuple[float, ...], std: tuple[float, ...], train: bool) -> Any:
    """The torchvision transform for one split: PIL image -> normalised float tensor (3, size, size)."""
    from torchvision.transforms import v2  # lazy: torchvision is only needed for folder datasets

    if train:
        geometry = [v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()]
    else:
        geometry = [v2.Resize(round(image_size / 0.875), antialias=True), v2.CenterCrop(image_size)]
    return v2.Compose([v2.ToImage(), *geometry, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


@dataclass(frozen=True)
class ImageFolderSpec(DatasetSpec):
    """A user's own folder of class sub-folders; found in ``data_dir`` or ``$RECTLAB_DATA``, never downloaded."""

    name: str = "imagefolder"
    title: str = "Image folder"
    splits: tuple[str, str] = ("train", "val")

    def candidates(self, data_dir: str | Path | None = None) -> list[tuple[Path, str]]:
        # the user cache never holds an image folder: nothing downloads one
        roots = [(root, why) for root, why in locate.search_roots(data_dir) if why != "user cache"]
        return [(base, why) for root, why in roots for base in (root, root / self.name)]

    def find(self, data_dir: str | Path | None = None) -> Path | None:
        for folder, _ in self.candidates(data_dir):
            if all((folder / split).is_dir() for split in self.splits):
                return folder
        return None

    def load(self, data_dir: str | Path | None = None, download: bool = True, **options: Any) -> LoadedData:
        """Build the train/val datasets; ``download`` is accepted for a uniform API (nothing can be downloaded).

        Args:
            options: ``image_size`` (default 224), the side of the square crops fed to the model; ``mean``,
                ``std``: per-channel normalisation (default: ImageNet's).
        """
        unknown = sorted(set(options) - {"image_size", "mean", "std"})
        if unknown:
            raise TypeError(
                f"dataset {self.name!r} takes the options image_size, mean and std, got {', '.join(unknown)}"
            )
        image_size: int = options.get("image_size", 224)
        mean: tuple[float, ...] = tuple(options.get("mean", IMAGENET_MEAN))
        std: tuple[float, ...] = tuple(options.get("std", IMAGENET_STD))
        if image_size <= 0:
            raise InputError(f"image_size must be positive, got {image_size}")
        if len(mean) != 3 or len(std) != 3:
            raise InputError("mean and std need 3 values (images are converted to RGB)")
        root = self.find(data_dir)
        if root is None:
            train, val = self.splits
            looked = "\n".join(f"  {folder} ({why})" for folder, why in self.candidates(data_dir))
            raise DatasetNotFoundError(
                f"No image folder found; looked for {train}/ and {val}/ sub-folders in:\n{looked or '  (nowhere)'}\n"
                f"Pass --data-dir ROOT (data_dir= in Python) or set {locate.ENV_VAR}=ROOT, where ROOT holds "
                f"{train}/<class>/<images> and {val}/<class>/<images> with the same class folders. "
                "Image folders are never downloaded."
            )
        from torchvision.datasets import ImageFolder  # lazy: only folder datasets need it

        sets = []
        for split, is_train in zip(self.splits, (True, False)):
            try:
                sets.append(ImageFolder(str(root / split), transform=transforms(image_size, mean, std, is_train)))
            except (FileNotFoundError, OSError) as e:  # no class folders, or no image files in them
                raise DataError(f"{root / split}: {e}") from e
        train_set, test_set = sets
        if train_set.classes != test_set.classes:
            only_train = sorted(set(train_set.classes) - set(test_set.classes))
            only_val = sorted(set(test_set.classes) - set(train_set.classes))
            raise DataError(
                f"{root}: {self.splits[0]}/ and {self.splits[1]}/ must have the same class folders "
                f"(labels are assigned by sorted folder name); only in {self.splits[0]}/: {only_train[:10]}, "
                f"only in {self.splits[1]}/: {only_val[:10]}"
            )
        return LoadedData(
            name=self.name,
            num_classes=len(train_set.classes),
            in_channels=3,
            image_size=(image_size, image_size),
            mean=tuple(mean),
            std=tuple(std),
            flip=True,
            crop_padding=0,  # augmentation is the random-resized crop inside train_set's transform
            source=str(root),
            classes=tuple(train_set.classes),
            train_set=train_set,
            test_set=test_set,
        )


IMAGE_FOLDER = ImageFolderSpec()
