"""Reading untrusted photos: every kind of bad or unusual photo is built here, in the test."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from featviz_core.errors import FeatvizError
from featviz_core.inputs import photos


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gradient(w: int = 40, h: int = 30) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 90)], axis=2).astype(np.uint8)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a gigantic canvas: a decompression bomb's shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_plain_rgb_round_trips():
    rgb = gradient()
    out = photos.read_photo(encode(Image.fromarray(rgb)))
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)
    assert np.array_equal(out, rgb)


def test_grayscale_and_16_bit_are_fine_photos():
    gray = gradient()[..., 0]
    out = photos.read_photo(encode(Image.fromarray(gray)))
    assert out.shape == (30, 40, 3) and np.array_equal(out[..., 1], gray)
    deep = (gray.astype(np.uint16) * 257)  # the same picture at 16 bits per pixel
    im16 = Image.fromarray(deep)  # mode I;16
    out16 = photos.read_photo(encode(im16))
    assert out16.shape == (30, 40, 3)
    assert np.abs(out16[..., 0].astype(int) - gray).max() <= 1  # scaled down, not clipped at 255
    assert out16.max() == gray.max()


def test_cmyk_becomes_rgb():
    rgb = gradient()
    out = photos.read_photo(encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95))
    assert out.shape == (30, 40, 3)
    assert np.abs(out.astype(int) - rgb).mean() < 12


def test_alpha_is_composited_on_white():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :5, 3] = 255  # left half opaque red, right half transparent
    out = photos.read_photo(encode(Image.fromarray(rgba, "RGBA")))
    assert out[0, 0].tolist() == [200, 0, 0]
    assert out[0, 9].tolist() == [255, 255, 255]


def test_exif_rotation_is_applied():
    rgb = gradient(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    out = photos.read_photo(encode(Image.fromarray(rgb), "JPEG", quality=95, exif=exif.tobytes()))
    assert out.shape == (40, 30, 3)


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"GIF89a but not really" * 10, "not an image"),
    (b"%PDF-1.4 a pdf is no photo", "not an image"),
])
def test_not_an_image(data, words):
    with pytest.raises(FeatvizError, match=words):
        photos.read_photo(data)


def test_truncated_file():
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(FeatvizError, match="damaged or truncated"):
        photos.read_photo(data[: len(data) // 2])


# 49 MP (under Pillow's warning), 100 MP (its warning zone), 225 MP
@pytest.mark.parametrize("side", [7000, 10000, 15000])
def test_decompression_bomb_is_refused_from_the_header(side):
    with pytest.raises(FeatvizError, match="too large.*40 megapixels"):
        photos.read_photo(png_claiming(side, side))


def test_byte_cap(monkeypatch):
    monkeypatch.setattr(photos, "MAX_BYTES", 1000)
    with pytest.raises(FeatvizError, match="MB: photos up to"):
        photos.read_photo(b"\0" * 1001)


def test_samples_and_unknown_name():
    cat = photos.sample_photo("chelsea")
    assert cat.shape == (300, 451, 3) and cat.dtype == np.uint8
    assert photos.sample_photo("camera").shape[2] == 3  # a grayscale sample comes as RGB
    with pytest.raises(FeatvizError, match="Did you mean 'chelsea'.*Valid sample photos: chelsea, astronaut"):
        photos.sample_photo("chelsee")


def test_digest_is_of_the_pixels():
    rgb = gradient()
    png, bmp = encode(Image.fromarray(rgb)), encode(Image.fromarray(rgb), "BMP")
    assert photos.photo_digest(photos.read_photo(png)) == photos.photo_digest(photos.read_photo(bmp))
    other = rgb.copy()
    other[0, 0, 0] ^= 1
    assert photos.photo_digest(other) != photos.photo_digest(rgb)


def test_square_crops_the_centre():
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, 10:30] = 255  # the centre square is white, the sides black
    out = photos.square(rgb, 16)
    assert out.shape == (16, 16, 3) and out.min() > 240
