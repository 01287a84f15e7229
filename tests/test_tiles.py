"""How grid pictures travel (featviz_ui/tiles.py): a JPEG data URL close to the PNG at a fraction of its
bytes, and the grid's memory of results, which never serves a picture the store no longer holds."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from skimage import data

from featviz_core import ChannelResult, Store
from featviz_core.store import png_bytes
from featviz_ui.tiles import RecentResults, tile_url


def _result(key: str, seed: int = 0) -> ChannelResult:
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((224, 224)))  # a textured picture, as renders are
    png = png_bytes(np.roll(photo, seed, axis=1))
    return ChannelResult("blocks.1", seed, png, [0.1, 0.2], [(1, png), (2, png)], 0.1, False, key)


def test_a_tile_is_a_jpeg_of_the_same_picture_in_fewer_bytes():
    result = _result("k")
    url = tile_url(result.png)
    assert url.startswith("data:image/jpeg;base64,")
    jpeg = base64.b64decode(url.split(",", 1)[1])
    shown = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(float)
    assert shown.shape == result.image.shape and np.abs(shown - result.image).mean() < 4
    assert len(jpeg) < len(result.png) / 2


def test_recent_results_serve_a_kept_result_until_the_store_drops_it(tmp_path):
    store, recent = Store(str(tmp_path / "cache")), RecentResults(size=2)
    store.put(_result("a"))
    first = recent.get(store, "a")
    assert first.png == _result("a").png and first.snapshots == [(2, first.png)]  # the final picture stands for them
    assert recent.get(store, "a") is first  # kept: not read again
    store._cache.delete("a")
    assert recent.get(store, "a") is None  # the store no longer holds it: neither does the grid
    for key in "bcd":
        store.put(_result(key))
        recent.get(store, key)
    assert len(recent._kept) == 2  # bounded
    other = Store(str(tmp_path / "other"))
    assert recent.get(other, "c") is None  # another store's pictures are its own
