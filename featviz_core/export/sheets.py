"""Output files: contact sheets, evolution GIFs, manifests and ZIP bundles of rendered channels."""
from __future__ import annotations

import io
import json
import math
import zipfile
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from ..store.disk import ChannelResult, png_array

LABEL_HEIGHT = 16


def png_name(result: ChannelResult) -> str:
    return f"{result.layer}_{result.channel}.png"


def contact_sheet(results: Sequence[ChannelResult], columns: int | None = None, tile: int | None = None,
                  gap: int = 4) -> Image.Image:
    """All pictures in one labelled grid (`layer:channel` under each tile; dead channels marked)."""
    if not results:
        raise ValueError("contact_sheet needs at least one result")
    columns = columns or math.ceil(math.sqrt(len(results)))
    rows = math.ceil(len(results) / columns)
    first = Image.open(io.BytesIO(results[0].png))
    tile = tile or first.width
    sheet = Image.new("RGB", (columns * (tile + gap) + gap, rows * (tile + LABEL_HEIGHT + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, result in enumerate(results):
        x = gap + (i % columns) * (tile + gap)
        y = gap + (i // columns) * (tile + LABEL_HEIGHT + gap)
        picture = Image.open(io.BytesIO(result.png)).convert("RGB").resize((tile, tile), Image.LANCZOS)
        sheet.paste(picture, (x, y))
        label = result.label + (" (dead)" if result.dead else "")
        draw.text((x + 2, y + tile + 2), label, fill="black", font=font)
    return sheet


def evolution_gif(result: ChannelResult, frame_ms: int = 350) -> bytes:
    """The picture's snapshots as an animated GIF (holding the final frame a little longer)."""
    frames = [Image.fromarray(png_array(png).squeeze()).convert("RGB") for _, png in result.snapshots]
    buf = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms * 4]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return buf.getvalue()


def manifest_item(result: ChannelResult, **extra) -> dict:
    curve = result.curve
    return {"png": png_name(result), "layer": result.layer, "channel": result.channel,
            "seconds": round(result.seconds, 4), "cached": result.cached, "dead": result.dead,
            "activation_start": curve[0], "activation_final": curve[-1], "steps": len(curve), "key": result.key,
            **extra}


def manifest(results: Sequence[ChannelResult], settings: dict, model: dict,
             extras: Sequence[dict] | None = None) -> dict:
    extras = extras or [{} for _ in results]
    return {"model": model, "settings": settings,
            "items": [manifest_item(r, **e) for r, e in zip(results, extras)]}


def zip_bundle(results: Sequence[ChannelResult], manifest_doc: dict, sheet: Image.Image | None = None) -> bytes:
    """A ZIP with every PNG, manifest.json and (optionally) the contact sheet."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for r in results:
            zf.writestr(png_name(r), r.png)
        zf.writestr("manifest.json", json.dumps(manifest_doc, indent=2))
        if sheet is not None:
            out = io.BytesIO()
            sheet.save(out, format="PNG")
            zf.writestr("contact_sheet.png", out.getvalue())
    return buf.getvalue()
