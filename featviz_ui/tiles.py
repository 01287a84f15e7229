"""How a grid's pictures travel to the browser: as JPEG (quality 90, full colour resolution), a quarter
of the PNG's bytes, inlined in the page's own message as a data URL, so the browser draws them without
a request per picture. The PNG stays what is kept, inspected large and downloaded. The results a grid
read lately stay in memory (`GRID_RESULTS`), so a link opened again is drawn without reading the disk."""
from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict

from PIL import Image

from featviz_core import ChannelResult, Store

QUALITY = 90


def tile_url(png: bytes) -> str:
    """A data URL of the picture as the grid shows it (about half a millisecond for a 224 px picture)."""
    image = Image.open(io.BytesIO(png))
    out = io.BytesIO()
    image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode).save(
        out, format="JPEG", quality=QUALITY, subsampling=0)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")



class RecentResults:
    """The results grids read lately (without their evolution frames), by store and key, so a view
    opened again (by anyone) is drawn without reading and decoding its entries. A key names one
    picture for good, so a kept result is never stale; one the store no longer holds (evicted,
    healed away) is read again, and so missed."""

    def __init__(self, size: int = 128):  # about 16 MB: a 224 px result without its frames is ~130 KB
        self.size, self._kept, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, store: Store, key: str) -> ChannelResult | None:
        where = (store.directory, key)
        with self._lock:
            kept = self._kept.get(where)
            if kept is not None:
                self._kept.move_to_end(where)
        if kept is not None and key in store:
            return kept
        result = store.get(key, snapshots=False)
        with self._lock:
            if result is None:
                self._kept.pop(where, None)
                return None
            self._kept[where] = result
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return result


GRID_RESULTS = RecentResults()
