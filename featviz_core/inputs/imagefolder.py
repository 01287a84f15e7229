"""A folder of photos as a scan sees it: a stable, safe file list and a bounded image loader.

The folder comes from outside, so nothing in it may take the scan down: symlinks that lead out of the
folder, files that are not images, truncated or garbled images and pixel bombs are skipped and counted.
The list is sorted, so shards cut from it are the same on every run and on every worker.
"""
from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

from .. import config
from ..errors import FeatvizError
from .photos import open_untrusted

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
MAX_FILES = 2_000_000  # a listing larger than this is refused rather than held in memory


@dataclass(frozen=True)
class FolderListing:
    root: str  # the folder's real path
    files: tuple[tuple[str, int, int], ...]  # (path relative to root with "/", size, mtime_ns), sorted
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count, for files never listed

    @property
    def paths(self) -> list[str]:
        return [rel for rel, _, _ in self.files]

    def identity(self) -> str:
        """A digest of the file list, sizes and modification times: a changed folder is a new scan."""
        h = hashlib.blake2b(digest_size=12)
        for rel, size, mtime in self.files:
            h.update(f"{rel}\0{size}\0{mtime}\n".encode())
        return h.hexdigest()


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def list_images(folder: str, label: str | None = None) -> FolderListing:
    """Every JPEG/PNG/WebP under `folder` (by extension), sorted by relative path. Raises FeatvizError
    for a folder that does not exist or is not a folder, or holds too many images; messages name the
    folder as `label` (default: its path)."""
    label = folder if label is None else label
    if not os.path.isdir(folder):
        raise FeatvizError(f"Image folder {label!r} does not exist or is not a folder.")
    root = os.path.realpath(folder)
    files, skipped = [], Counter()
    # followlinks=False: a linked folder is never entered (it could lead anywhere, or loop).
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not name.lower().endswith(EXTENSIONS):
                skipped["not an image file"] += 1
                continue
            if not _inside(os.path.realpath(path), root):
                skipped["link leading out of the folder"] += 1
                continue
            try:
                info = os.stat(path)
            except OSError:
                skipped["unreadable image"] += 1
                continue
            if not stat.S_ISREG(info.st_mode):  # a pipe or device named .jpg would block or never end
                skipped["not a regular file"] += 1
                continue
            files.append((os.path.relpath(path, root).replace(os.sep, "/"), info.st_size, info.st_mtime_ns))
            if len(files) > MAX_FILES:
                raise FeatvizError(f"Image folder {label!r} holds more than {MAX_FILES:,} images: "
                                   "scan a smaller folder.")
    files.sort()
    return FolderListing(root, tuple(files), dict(skipped))


@dataclass(frozen=True)
class Geometry:
    """How an image of `width` x `height` became the model's `size` x `size` input: scaled so its
    shorter side is `size`, then centre-cropped at (`left`, `top`) of the scaled image."""

    width: int
    height: int
    size: int
    scaled_w: int
    scaled_h: int
    left: int
    top: int

    @classmethod
    def fit(cls, width: int, height: int, size: int) -> "Geometry":
        scale = size / min(width, height)
        sw, sh = max(size, round(width * scale)), max(size, round(height * scale))
        return cls(width, height, size, sw, sh, (sw - size) // 2, (sh - size) // 2)

    def to_original(self, box: tuple[float, float, float, float]) -> list[int]:
        """A box in model-input pixels -> the same region in the original image's pixels (clipped)."""
        x0, y0, x1, y1 = box
        sx, sy = self.width / self.scaled_w, self.height / self.scaled_h
        out = [(x0 + self.left) * sx, (y0 + self.top) * sy, (x1 + self.left) * sx, (y1 + self.top) * sy]
        return [int(np.clip(round(out[0]), 0, self.width)), int(np.clip(round(out[1]), 0, self.height)),
                int(np.clip(round(out[2]), 0, self.width)), int(np.clip(round(out[3]), 0, self.height))]


def open_image(path: str, channels: int = 3, max_pixels: int | None = None) -> Image.Image:
    """A decoded image in RGB (or L for a 1-channel model), upright per its EXIF tag. Raises
    FeatvizError for anything that is not a readable image of at most `max_pixels` (default: the one
    limit of images from outside, config.max_pixels())."""
    try:
        with open_untrusted(path, ("JPEG", "PNG", "WEBP"), max_pixels) as img:  # EXTENSIONS' decoders only
            img = ImageOps.exif_transpose(img)
            return img.convert("L" if channels == 1 else "RGB")
    except FeatvizError:
        raise
    except Exception as exc:  # truncated, garbled, not an image, decompression bomb, vanished
        raise FeatvizError(f"unreadable image ({type(exc).__name__})") from exc


def model_input(img: Image.Image, size: int) -> tuple[np.ndarray, Geometry]:
    """Resize (shorter side to `size`) and centre-crop: HxWxC uint8 and how to map boxes back."""
    geo = Geometry.fit(img.width, img.height, size)
    scaled = img.resize((geo.scaled_w, geo.scaled_h), Image.Resampling.BILINEAR)
    crop = scaled.crop((geo.left, geo.top, geo.left + size, geo.top + size))
    arr = np.array(crop)  # writable: torch.from_numpy warns on read-only arrays
    return (arr[..., None] if arr.ndim == 2 else arr), geo


def listed_images(folder: str, label: str | None = None) -> FolderListing:
    """list_images, refusing a folder with no image in it; messages name the folder as `label`
    (default: its path; the dashboard passes a name that does not show the server's paths)."""
    label = folder if label is None else label
    listing = list_images(folder, label)
    if not listing.files:
        found = ", ".join(f"{n} {reason}" for reason, n in listing.skipped.items()) or "it is empty"
        raise FeatvizError(f"Image folder {label!r} holds no JPEG, PNG or WebP files ({found}).")
    return listing


@dataclass(frozen=True)
class PhotoFolder:
    """A folder's photos for measuring on (layer similarity, circuits): its first `limit` listed images
    whose headers read as a JPEG, PNG or WebP within the pixel limit (the rest skipped and counted)."""

    root: str
    files: tuple[str, ...]
    identity: str  # the kept files' names, sizes and modification times
    name: str  # what messages and the dashboard call it
    skipped: int = 0


def _header_ok(path: str, max_pixels: int) -> bool:
    try:
        with open_untrusted(path, ("JPEG", "PNG", "WEBP"), max_pixels):
            return True
    except Exception:  # hostile: not an image, garbled header, over the pixel limit
        return False


def photo_folder(folder: str, limit: int, label: str | None = None) -> PhotoFolder:
    """The first `limit` readable photos of `folder` (sorted by path). Raises FeatvizError for a folder
    that is missing, empty, or holds no readable photo."""
    listing = listed_images(folder, label)
    name = folder if label is None else label
    max_pixels = config.max_pixels()
    kept, skipped = [], sum(listing.skipped.values())
    for rel, size, mtime in listing.files:
        if len(kept) == limit:
            break
        if _header_ok(os.path.join(listing.root, rel), max_pixels):
            kept.append((rel, size, mtime))
        else:
            skipped += 1
    if not kept:
        raise FeatvizError(f"Image folder {name!r} holds no readable photo ({skipped} files are not JPEG, PNG or "
                           f"WebP images within {max_pixels // 1_000_000} megapixels).")
    identity = FolderListing(listing.root, tuple(kept)).identity()
    return PhotoFolder(listing.root, tuple(rel for rel, _, _ in kept), identity, name, skipped)


def folder_photo(folder: PhotoFolder, rel: str, channels: int, side: int) -> np.ndarray:
    """One photo of `folder` as HxWxC uint8, its short side at most `side` (decoded once, then reduced).
    Raises FeatvizError naming the file by its place in the folder, never the server's path."""
    try:
        img = open_image(os.path.join(folder.root, rel), channels)
    except FeatvizError as exc:
        raise FeatvizError(f"Photo {rel!r} in folder {folder.name!r} cannot be read ({exc}): remove it, or "
                           "choose another folder.") from None
    if min(img.size) > side:
        scale = side / min(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BILINEAR, reducing_gap=2.0)
    arr = np.array(img)
    return arr[..., None] if arr.ndim == 2 else arr
