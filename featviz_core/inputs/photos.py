"""Photos to dream on: untrusted bytes read safely into RGB uint8, or a sample photo by name.

An uploaded photo is hostile until read: its byte size is capped before decoding, its pixel count
is checked from the header before any pixel is decoded (a decompression bomb is a small file that
claims a gigantic canvas), and only common still-image decoders are tried. Pillow's own check
only warns between 1x and 2x of `Image.MAX_IMAGE_PIXELS`, one value for the whole process: so
`open_untrusted`, the one way featviz opens a picture from outside (photos here, image folders in
imagefolder.py), always sets it to PILLOW_LIMIT and refuses each caller's own limit from the header.
Conversions make every readable photo plain RGB: grayscale and 16-bit are fine photos, CMYK
becomes RGB, alpha is composited on white, and the EXIF orientation is applied.
"""
from __future__ import annotations

import hashlib
import io
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps

from .. import config
from ..errors import FeatvizError, unknown_choice

MAX_PIXELS = config.MAX_MEGAPIXELS * 1_000_000  # the default of config.max_pixels(): a host may lower it
PILLOW_LIMIT = 64_000_000  # Pillow's process-wide check: at least every caller's own limit
MAX_BYTES = 25 * 2**20  # an encoded photo larger than this is refused before decoding
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")  # decoders tried; nothing exotic
# The scikit-image photos that ship with the package (no download), offered by name.
SAMPLE_PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "camera", "retina")
# The natural photos the self-check, circuits and layer similarity measure on (scikit-image's, no download).
NATURAL_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field", "retina",
                  "immunohistochemistry", "camera", "grass", "gravel", "brick", "coins", "moon")
WHITE = (255, 255, 255)


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode as an (H, W, 3) uint8 array."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or wider grayscale: Pillow's convert("L") clips at 255 instead of scaling.
        values = np.asarray(im, dtype=np.float64)
        peak = values.max(initial=0)
        top = 1.0 if im.mode == "F" and peak <= 1.0 else 65535.0 if peak > 255 else 255.0
        gray = np.clip(np.round(values / top * 255), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))


class TooLarge(FeatvizError):
    def __init__(self, size: tuple[int, int] | None):
        super().__init__(f"image too large ({size[0]}x{size[1]})" if size else "image too large")
        self.size = size


def open_untrusted(source, formats: Sequence[str] = FORMATS, max_pixels: int | None = None) -> Image.Image:
    """Image.open for a file or bytes from outside: only `formats`' decoders, and TooLarge when the
    header claims more than `max_pixels` (default: the one limit, config.max_pixels()), before any pixel
    is decoded. Unreadable input raises what Image.open raises (OSError, SyntaxError, ValueError)."""
    max_pixels = config.max_pixels() if max_pixels is None else max_pixels
    Image.MAX_IMAGE_PIXELS = PILLOW_LIMIT  # the same value from every caller: it is process-wide
    try:
        im = Image.open(source, formats=formats)  # warns from PILLOW_LIMIT: refused just below anyway
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # over twice PILLOW_LIMIT, or
        raise TooLarge(None) from None  # over it where warnings are errors
    if im.width * im.height > max_pixels:
        im.close()
        raise TooLarge((im.width, im.height))
    return im


def read_photo(data: bytes, name: str = "the photo") -> np.ndarray:
    """Untrusted encoded bytes -> (H, W, 3) uint8 RGB, upright. Raises FeatvizError saying why not."""
    if len(data) > MAX_BYTES:
        raise FeatvizError(f"{name} is {len(data) / 2**20:.1f} MB: photos up to {MAX_BYTES // 2**20} MB are accepted.")
    if not data:
        raise FeatvizError(f"{name} is empty.")
    limit = config.max_pixels()  # before the try: a bad FEATVIZ_MAX_MEGAPIXELS is the host's message, not this
    try:
        im = open_untrusted(io.BytesIO(data), FORMATS, limit)
    except TooLarge as exc:
        raise _too_large(name, exc.size) from None
    except (OSError, SyntaxError, ValueError):
        raise FeatvizError(f"{name} is not an image featviz can read (accepted: {', '.join(FORMATS)}).") from None
    with im:
        width, height = im.size
        if width < 1 or height < 1:
            raise FeatvizError(f"{name} has no pixels.")
        try:
            im.seek(0)  # an animation: its first frame
            im.load()
            im = ImageOps.exif_transpose(im)
            return np.ascontiguousarray(_to_rgb(im))
        except Image.DecompressionBombError:
            raise _too_large(name, (width, height)) from None
        except Exception:  # damaged files raise anything from OSError to struct.error or ZeroDivisionError
            raise FeatvizError(f"{name} is damaged or truncated: its pixels could not be decoded.") from None


def _too_large(name: str, size: tuple[int, int] | None) -> FeatvizError:
    claimed = f" ({size[0]} x {size[1]} = {size[0] * size[1] / 1e6:.0f} MP)" if size else ""
    limit = config.max_pixels() / 1e6
    return FeatvizError(f"{name} is too large{claimed}: photos up to {limit:.0f} megapixels are accepted.")


def sample_photo(name: str) -> np.ndarray:
    """One of SAMPLE_PHOTOS (shipped with scikit-image) as (H, W, 3) uint8."""
    if name not in SAMPLE_PHOTOS:
        raise unknown_choice("sample photo", name, SAMPLE_PHOTOS)
    return skimage_photo(name)


def skimage_photo(name: str) -> np.ndarray:
    """The one loader of scikit-image's bundled photos (the samples, the self-check's natural photos):
    (H, W, 3) uint8; grayscale comes as RGB, a stereo pair as its left picture."""
    import skimage.data

    img = getattr(skimage.data, name)()
    img = np.asarray(img[0] if isinstance(img, tuple) else img)  # stereo_motorcycle: (left, right, disparity)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3].astype(np.uint8))


def photo_digest(photo: np.ndarray) -> str:
    """Content digest of the decoded pixels (for cache keys): the same picture in another file
    format, or with its EXIF rotation already applied, gets the same digest."""
    h = hashlib.sha256(f"{photo.shape}|{photo.dtype}|".encode())
    h.update(np.ascontiguousarray(photo).tobytes())
    return h.hexdigest()[:20]


def check_digest(photo: np.ndarray, digest: str | None, what: str) -> None:
    """Refuse a photo that is not the one `digest` names. Cache keys hold the digest, not the pixels:
    a wrong one would store pictures under another photo's key (in a shared cache, for every visitor)."""
    if photo_digest(photo) != digest:
        raise FeatvizError(f"{what} is not the one its digest names ({digest!r}): pass photo_digest() of it.")


def square(photo: np.ndarray, size: int) -> np.ndarray:
    """The centre square of the photo at size x size (the render loop works on square pictures)."""
    h, w = photo.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(photo[top:top + side, left:left + side])
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))


def whole_photo(photo: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The whole photo resized to `shape` (height, width), as `square` resizes (a square photo: the same)."""
    return np.asarray(Image.fromarray(photo).resize((shape[1], shape[0]), Image.Resampling.LANCZOS))
