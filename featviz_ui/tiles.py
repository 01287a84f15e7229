"""How a grid's pictures travel to the browser: as JPEG (quality 90, full colour resolution), a quarter
of the PNG's bytes, inlined in the page's own message as a data URL, so the browser draws them without
a request per picture. The PNG stays what is kept, inspected large and downloaded."""
from __future__ import annotations

import base64
import io

from PIL import Image

QUALITY = 90


def tile_url(png: bytes) -> str:
    """A data URL of the picture as the grid shows it (about half a millisecond for a 224 px picture)."""
    image = Image.open(io.BytesIO(png))
    out = io.BytesIO()
    image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode).save(
        out, format="JPEG", quality=QUALITY, subsampling=0)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")

