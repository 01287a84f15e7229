"""A folder of photos for the exemplar tests, built from the photos scikit-image ships: small copies,
flips and crops in several formats and subfolders, noise images, and junk a real folder may hold."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "camera", "rocket")
JUNK = {"not an image file": 1, "unreadable image": 2, "link leading out of the folder": 1, "not a regular file": 1}


def _photo(name: str) -> Image.Image:
    import skimage.data

    img = Image.fromarray(np.asarray(getattr(skimage.data, name)()))
    img.thumbnail((120, 120))
    return img


def build_folder(root: Path) -> Path:
    """18 readable images (sorted names), 2 unreadable ones, a text file, a named pipe and 2 links leading out."""
    folder = root / "photos"
    for i, name in enumerate(PHOTOS):
        img = _photo(name)
        sub = folder / ("set_a" if i % 2 else "set_b")
        sub.mkdir(parents=True, exist_ok=True)
        img.save(sub / f"{name}.png")
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(sub / f"{name}_flip.jpg", quality=95)
        w, h = img.size
        img.crop((w // 4, h // 5, w, h)).save(sub / f"{name}_crop.webp", lossless=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        noise = rng.integers(0, 256, size=(70 + 10 * i, 90, 3), dtype=np.uint8)
        Image.fromarray(noise).save(folder / f"noise_{i}.png")
    (folder / "notes.txt").write_text("not a photo")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no jpeg")
    (folder / "set_a" / "truncated.png").write_bytes((folder / "noise_0.png").read_bytes()[:200])
    outside = root / "outside"
    outside.mkdir(exist_ok=True)
    _photo("astronaut").save(outside / "secret.png")
    os.symlink(outside / "secret.png", folder / "escape.png")  # a file link out of the folder
    os.symlink(outside, folder / "linked_dir")  # a folder link: never entered
    os.mkfifo(folder / "set_b" / "pipe.jpg")  # opening it would block until someone writes
    return folder


READABLE = 18
