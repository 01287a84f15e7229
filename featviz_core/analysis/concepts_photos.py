"""The photos concepts are learned on and found in: the built-in `PhotoSet` (natural photos and their
crops), or a user's folder read as hostile input the way the exemplar scan reads it (no links out,
no pipes, byte and pixel caps before decoding, unreadable files skipped and counted), capped at
`MAX_FOLDER_IMAGES` and streamed in batches, never held whole.

Both are small frozen values that travel inside work items and name their photos in cache keys.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Union

import numpy as np
import torch

from ..errors import FeatvizError
from ..inputs.imagefolder import model_input, open_image, photo_folder
from ..models.loading import LoadedModel
from .photoset import PhotoSet

MAX_FOLDER_IMAGES = 1000  # a folder's first photos (sorted by path) that concepts are learned on
BATCH = 16  # photos per forward pass


@dataclass(frozen=True)
class FolderPhotos:
    """The first `MAX_FOLDER_IMAGES` image files of a folder (paths relative to `root`, sorted)."""

    root: str
    files: tuple[str, ...]
    listing: str  # the folder listing's identity (paths, sizes, modification times)

    def count(self, channels: int = 3) -> int:
        return len(self.files)

    def identity(self, channels: int = 3) -> str:
        return f"folder-{self.listing}-{len(self.files)}-{channels}ch"


Photos = Union[PhotoSet, FolderPhotos]


def folder_photos(folder: str, label: str | None = None) -> FolderPhotos:
    """A folder's first MAX_FOLDER_IMAGES readable photos, by the one rule for a folder of photos to
    measure on (inputs.imagefolder.photo_folder: listed, header-checked, pixel-capped); FeatvizError for
    a missing folder or one without a readable photo, naming it as `label` (default: its path)."""
    found = photo_folder(folder, MAX_FOLDER_IMAGES, label)
    return FolderPhotos(found.root, found.files, found.identity)


def default_photos(model: LoadedModel, photos: Photos | None) -> Photos:
    return photos if photos is not None else PhotoSet(size=model.input_size)


def _folder_image(photos: FolderPhotos, index: int, model: LoadedModel) -> np.ndarray | None:
    try:
        img = open_image(os.path.join(photos.root, photos.files[index]), model.in_channels)
    except FeatvizError:
        return None
    return model_input(img, model.input_size)[0]


@lru_cache(maxsize=2)
def _set_images(photos: PhotoSet, channels: int) -> torch.Tensor:
    return photos.images(channels)


def _as_batch(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def photo_batches(photos: Photos, model: LoadedModel, batch: int = BATCH) -> Iterator[tuple[list[int], torch.Tensor]]:
    """(photo indices, (b, C, S, S) in [0, 1]) batches; a folder's unreadable files are skipped."""
    if isinstance(photos, PhotoSet):
        images = _set_images(photos, model.in_channels)
        for start in range(0, len(images), batch):
            part = images[start:start + batch]
            yield list(range(start, start + len(part))), part
        return
    arrays, index = [], []
    for i in range(len(photos.files)):
        arr = _folder_image(photos, i, model)
        if arr is not None:
            arrays.append(arr)
            index.append(i)
        if len(arrays) == batch or (arrays and i == len(photos.files) - 1):
            yield index, _as_batch(arrays)
            arrays, index = [], []


def photo_at(photos: Photos, model: LoadedModel, index: int) -> np.ndarray:
    """Photo `index` as the model sees it: HxWxC uint8 (the set's size, or the model's input size)."""
    if not 0 <= index < photos.count(model.in_channels):
        raise FeatvizError(f"Photo {index} is out of range: the set holds {photos.count(model.in_channels)} "
                           f"photos (0-{photos.count(model.in_channels) - 1}).")
    if isinstance(photos, PhotoSet):
        image = _set_images(photos, model.in_channels)[index]
        return (image.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
    arr = _folder_image(photos, index, model)
    if arr is None:
        raise FeatvizError(f"Photo {index} of the folder can no longer be read.")
    return arr
