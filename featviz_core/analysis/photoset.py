"""The photos that layer similarity (CKA) and channel circuits are measured on: the natural photos the
self-check uses (the ones scikit-image ships), each as a centred square and a few random crops, all
resized to one size; plus, for circuits, any extra pictures a caller brings (a channel's rendered
picture, dataset exemplars).

A `PhotoSet` is a small frozen value: it travels inside work items and names its photos in cache keys
(`identity`), and builds the pixels only where they are used (`images`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FeatvizError
from ..spec import SIZE_RANGE, check_whole
from .selfcheck import natural_photos

PHOTOSET_VERSION = 1  # bump when the same PhotoSet would build other pixels


@lru_cache(maxsize=2)
def _photos(channels: int) -> tuple[np.ndarray, ...]:
    return tuple(natural_photos(channels))


def _square(t: torch.Tensor, size: int, y: int, x: int, side: int) -> torch.Tensor:
    crop = t[..., y:y + side, x:x + side]
    return F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def _as_tensor(photo: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1).float().unsqueeze(0) / 255


@dataclass(frozen=True)
class PhotoSet:
    """`limit` photos (None: all of them), each as its centred square and `crops` random crops
    (40-100% of its short side, drawn from `seed`, as the self-check draws them), at `size` px."""

    size: int = 224
    crops: int = 6
    seed: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        check_whole("size", self.size, SIZE_RANGE)
        if isinstance(self.crops, bool) or not isinstance(self.crops, int) or not 0 <= self.crops <= 64:
            raise FeatvizError(f"Crops per photo {self.crops!r} is out of range: choose a whole number from 0 to 64.")
        if self.limit is not None and not (isinstance(self.limit, int) and self.limit >= 1):
            raise FeatvizError(f"Photo limit {self.limit!r} must be a whole number >= 1 (or None for every photo).")

    def count(self, channels: int = 3) -> int:
        return len(_photos(channels)[:self.limit]) * (1 + self.crops)

    def identity(self, channels: int = 3) -> str:
        """Names these photos in cache keys (no ':' inside, so it is one key part)."""
        limit = "all" if self.limit is None else self.limit
        return f"natural{PHOTOSET_VERSION}-{self.size}px-{self.crops}crops-seed{self.seed}-{limit}-{channels}ch"

    def images(self, channels: int = 3) -> torch.Tensor:
        """(n, channels, size, size) in [0, 1]: per photo its centred square, then its crops."""
        rng = np.random.default_rng(self.seed)
        out = []
        for photo in _photos(channels)[:self.limit]:
            t = _as_tensor(photo)
            h, w = photo.shape[:2]
            side = min(h, w)
            out.append(_square(t, self.size, (h - side) // 2, (w - side) // 2, side))
            for _ in range(self.crops):
                side = int(min(h, w) * rng.uniform(0.4, 1.0))
                y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                out.append(_square(t, self.size, y, x, side))
        return torch.cat(out)


def extra_images(pictures: Sequence[np.ndarray], size: int, channels: int = 3) -> torch.Tensor:
    """Caller's pictures (HxWxC uint8) as (n, channels, size, size) in [0, 1], centre-cropped square."""
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
