"""The photos that layer similarity (CKA) and channel circuits are measured on: the natural photos the
self-check uses (the ones scikit-image ships), each as a centred square and a few random crops, all
resized to one size; plus, for circuits, any extra pictures a caller brings (a channel's rendered
picture, dataset exemplars).

A `PhotoSet` is a small frozen value: it travels inside work items and names its photos in cache keys
(`identity`), and builds the pixels only where they are used (`batches`, `images`), a photo at a time:
so naming one imports no torch (the dashboard reads a stored matrix by key), and a folder of a thousand
photos is never held decoded at once. A folder's photos (`PhotoSet.of_folder`) are hostile input, read
as the exemplar scan reads its folders (inputs/imagefolder.py): capped in count and in pixels.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np

from ..errors import FeatvizError
from ..inputs.imagefolder import PhotoFolder, folder_photo, photo_folder
from ..inputs.photos import NATURAL_PHOTOS
from ..spec import SIZE_RANGE, check_whole

PHOTOSET_VERSION = 1  # bump when the same PhotoSet would build other pixels
MAX_FOLDER_PHOTOS = 1000  # photos taken from a folder (sorted by path): each Gram is n x n
WORK_SIDE = 3  # a folder photo is reduced to a short side of WORK_SIDE x size before its crops are cut


@lru_cache(maxsize=2)
def _photos(channels: int) -> tuple[np.ndarray, ...]:
    from .selfcheck import natural_photos  # torch: only once pixels are wanted

    return tuple(natural_photos(channels))


def _square(t, size: int, y: int, x: int, side: int):
    import torch.nn.functional as F

    crop = t[..., y:y + side, x:x + side]
    return F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def _as_tensor(photo: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1).float().unsqueeze(0) / 255


@dataclass(frozen=True)
class PhotoSet:
    """`limit` photos (None: all of them), each as its centred square and `crops` random crops
    (40-100% of its short side, drawn from `seed`, as the self-check draws them), at `size` px: the
    natural photos, or a folder's (`folder`, made by `of_folder`)."""

    size: int = 224
    crops: int = 6
    seed: int = 0
    limit: int | None = None
    folder: PhotoFolder | None = None

    def __post_init__(self) -> None:
        check_whole("size", self.size, SIZE_RANGE)
        if isinstance(self.crops, bool) or not isinstance(self.crops, int) or not 0 <= self.crops <= 64:
            raise FeatvizError(f"Crops per photo {self.crops!r} is out of range: choose a whole number from 0 to 64.")
        if self.limit is not None and not (isinstance(self.limit, int) and self.limit >= 1):
            raise FeatvizError(f"Photo limit {self.limit!r} must be a whole number >= 1 (or None for every photo).")

    @classmethod
    def of_folder(cls, folder: str, size: int = 224, crops: int = 0, seed: int = 0, label: str | None = None,
                  limit: int = MAX_FOLDER_PHOTOS) -> "PhotoSet":
        """The first `limit` (at most MAX_FOLDER_PHOTOS) readable photos of `folder`. Raises FeatvizError
        for a missing, empty or unreadable folder, naming it as `label` (default: its path)."""
        cap = min(limit, MAX_FOLDER_PHOTOS)
        return replace(cls(size, crops, seed), folder=photo_folder(folder, cap, label))

    def _names(self) -> Sequence[str]:
        return (self.folder.files if self.folder else NATURAL_PHOTOS)[:self.limit]

    def photos(self) -> int:
        """How many photos (each gives 1 + crops images)."""
        return len(self._names())

    def count(self, channels: int = 3) -> int:
        return self.photos() * (1 + self.crops)

    def groups(self) -> list[int]:
        """Each image's photo: the crops of a photo belong with it (they are not independent examples)."""
        return [i // (1 + self.crops) for i in range(self.count())]

    def identity(self, channels: int = 3) -> str:
        """Names these photos in cache keys (no ':' inside, so it is one key part)."""
        limit = "all" if self.limit is None else self.limit
        source = f"folder{self.folder.identity}-v" if self.folder else "natural"
        return f"{source}{PHOTOSET_VERSION}-{self.size}px-{self.crops}crops-seed{self.seed}-{limit}-{channels}ch"

    def _pixels(self, channels: int) -> Iterator[np.ndarray]:
        if self.folder is None:
            yield from _photos(channels)[:self.limit]
            return
        for rel in self._names():
            yield folder_photo(self.folder, rel, channels, WORK_SIDE * self.size)

    def batches(self, channels: int = 3, batch: int = 16) -> Iterator:
        """(<= batch, channels, size, size) tensors in [0, 1], in order: per photo its centred square,
        then its crops. One photo is decoded at a time."""
        import torch

        rng, pending = np.random.default_rng(self.seed), []
        for photo in self._pixels(channels):
            t = _as_tensor(photo)
            h, w = photo.shape[:2]
            side = min(h, w)
            pending.append(_square(t, self.size, (h - side) // 2, (w - side) // 2, side))
            for _ in range(self.crops):
                side = int(min(h, w) * rng.uniform(0.4, 1.0))
                y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                pending.append(_square(t, self.size, y, x, side))
            while len(pending) >= batch:
                yield torch.cat(pending[:batch])
                pending = pending[batch:]
        if pending:
            yield torch.cat(pending)

    def images(self, channels: int = 3):
        """(n, channels, size, size) in [0, 1]: every batch at once (small sets: circuits)."""
        import torch

        return torch.cat(list(self.batches(channels, 64)))


def extra_images(pictures: Sequence[np.ndarray], size: int, channels: int = 3):
    """Caller's pictures (HxWxC uint8) as (n, channels, size, size) in [0, 1], centre-cropped square."""
    import torch

    out = []
    for i, picture in enumerate(pictures):
        arr = np.asarray(picture)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (1, 3) or min(arr.shape[:2]) < 8:
            raise FeatvizError(f"Extra picture {i} must be an HxWx3 (or HxWx1) uint8 array of at least 8x8 pixels; "
                               f"got {arr.dtype} of shape {arr.shape}.")
        if arr.shape[2] != channels:
            arr = (np.repeat(arr, 3, axis=2) if channels == 3 else
                   np.round(arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None])
        h, w = arr.shape[:2]
        side = min(h, w)
        out.append(_square(_as_tensor(arr.astype(np.uint8)), size, (h - side) // 2, (w - side) // 2, side))
    return torch.cat(out) if out else torch.zeros(0, channels, size, size)


def pictures_digest(pictures: Sequence[np.ndarray]) -> str:
    """Names a list of extra pictures in cache keys ('none' for no pictures)."""
    if not pictures:
        return "none"
    h = hashlib.blake2b(digest_size=10)
    for picture in pictures:
        arr = np.ascontiguousarray(np.asarray(picture))
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()
