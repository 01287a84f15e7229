"""Where a concept lives: the photos (built-in or a folder) where its code peaks, each as a crop of the
layer's measured receptive field around the peak (the exemplar scan's machinery: scan.receptive_field),
found in one streamed pass over the photos.

Each photo counts once per concept, at its spatial maximum (the first in row-major order), and the
lists are cut in one total order (code descending, photo index ascending), as the scan cuts its own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models.loading import LoadedModel
from ..spec import check_whole
from ..store.disk import Store
from .concepts import check_doc, code_maps
from .concepts_photos import Photos, default_photos, photo_at, photo_batches
from .scan import receptive_field

MAX_EXEMPLARS = 100


@dataclass(frozen=True)
class Exemplar:
    photo: int  # index in the photo set (or the folder's capped, sorted file list)
    row: int  # the peak's position in the layer's map
    col: int
    code: float  # the concept's code there
    box: tuple[float, float, float, float]  # the receptive field there, in the photo's pixels (x0, y0, x1, y1)
    crop: np.ndarray  # HxWxC uint8, the photo inside `box`


def peaks(model: LoadedModel, doc: dict, photos: Photos, top: int) -> tuple[list[list[tuple]], int]:
    """Per concept, its `top` (code, photo, flat position) peaks, best first; and the map's width."""
    best: list[list[tuple]] = [[] for _ in doc["concepts"]]
    width = 1
    for index, images in photo_batches(photos, model):
        maps = code_maps(model, doc, images)  # (b, k, h, w)
        width = maps.shape[-1]
        values, positions = maps.flatten(2).max(dim=2)  # the first maximum of each photo and concept
        for c in range(maps.shape[1]):
            found = [(float(v), i, int(p)) for v, i, p in zip(values[:, c], index, positions[:, c])]
            best[c] = sorted(best[c] + found, key=lambda e: (-e[0], e[1]))[:top]
    return best, width


@torch.no_grad()
def concept_exemplars(model: LoadedModel, doc: dict, photos: Photos | None = None, top: int = 6,
                      store: Store | None = None) -> list[list[Exemplar]]:
    """Per concept of `doc`, the `top` photos where its code peaks (best first), with their crops."""
    check_doc(model, doc)
    check_whole("exemplars per concept", top, (1, MAX_EXEMPLARS))
    photos = default_photos(model, photos)
    best, width = peaks(model, doc, photos, top)
    rf = receptive_field(model, doc["layer"], store)
    out = []
    for entries in best:
        found = []
        for code, index, position in entries:
            image = photo_at(photos, model, index)
            row, col = divmod(position, width)
            box = rf.box(row, col, image.shape[0])
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            found.append(Exemplar(index, row, col, code, box, image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].copy()))
        out.append(found)
    return out
