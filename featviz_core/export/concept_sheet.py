"""The sheet of a layer's concepts: a row per concept, its picture first, then the photo crops where
its code peaks, with a label (concept, importance, self-check) under the picture."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LABEL_HEIGHT = 14


def _tile(array: np.ndarray, tile: int) -> Image.Image:
    image = Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).convert("RGB")
    scale = tile / max(image.size)  # up or down: a small crop is shown as large as the picture
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)


def concept_sheet(pictures: Sequence[np.ndarray], exemplars: Sequence[Sequence[np.ndarray]], labels: Sequence[str],
                  tile: int = 128, gap: int = 4) -> Image.Image:
    """Row i: `pictures[i]` (HxWxC uint8) labelled `labels[i]`, then `exemplars[i]` (crops, any size, fitted
    into a tile). A wider gap parts the picture from its crops."""
    if not pictures:
        raise ValueError("concept_sheet needs at least one picture")
    columns = 1 + max((len(row) for row in exemplars), default=0)
    row_height = tile + LABEL_HEIGHT + gap
    sheet = Image.new("RGB", (columns * (tile + gap) + 3 * gap, len(pictures) * row_height + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, (picture, crops, label) in enumerate(zip(pictures, exemplars, labels)):
        y = gap + i * row_height
        sheet.paste(_tile(picture, tile), (gap, y))
        draw.text((gap + 2, y + tile + 1), label, fill="black", font=font)
        for j, crop in enumerate(crops):
            image = _tile(crop, tile)
            x = 4 * gap + (j + 1) * (tile + gap)
            sheet.paste(image, (x + (tile - image.width) // 2, y + (tile - image.height) // 2))
    return sheet
