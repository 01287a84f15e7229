"""A scan's output folder: `exemplars.json`, one PNG crop per exemplar, and reading both back.

The dashboard reads only folders its owner names on the server's command line, and from them only
`exemplars.json` and crop files whose names it builds itself from a layer it found in the document and
two integers, so nothing in the document can make it open another file.
"""
from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from ..errors import FeatvizError
from ..inputs.imagefolder import model_input, open_image
from ..store.disk import matches

if TYPE_CHECKING:  # the dashboard reads scans without torch; measuring a picture's peak imports it
    from ..models.loading import LoadedModel

DOC = "exemplars.json"
CROP_SIDE = 192  # a crop's longer side at most, in pixels
WHOLE_SIDE = 256  # the whole photo's longer side at most
OUTLINE = (255, 64, 0)
MAX_DOC_BYTES = 256 * 2**20


def crop_name(layer: str, channel: int, rank: int) -> str:
    """The crop of a channel's `rank`-th exemplar (0 = best), relative to the output folder."""
    return f"crops/{re.sub(r'[^A-Za-z0-9._-]', '_', layer)}/{int(channel)}_{int(rank)}.png"


def whole_name(layer: str, channel: int, rank: int) -> str:
    """The whole photo of that exemplar, small, with its crop outlined."""
    return crop_name(layer, channel, rank).replace("crops/", "whole/", 1)[:-4] + ".jpg"


def _save_views(img: Image.Image, box: list[int], crop: str, whole: str) -> None:
    part = img.crop(tuple(box))
    part.thumbnail((CROP_SIDE, CROP_SIDE))
    part.save(crop)
    small = img.copy()
    small.thumbnail((WHOLE_SIDE, WHOLE_SIDE))
    scale = small.width / img.width
    outline = [round(v * scale) for v in box]
    corners = [outline[0], outline[1], max(outline[0], outline[2] - 1), max(outline[1], outline[3] - 1)]
    ImageDraw.Draw(small).rectangle(corners, outline=OUTLINE, width=max(2, small.width // 100))
    small.save(whole, quality=85)


def write_outputs(doc: dict, root: str, out: str) -> int:
    """`out/exemplars.json`, every crop and every whole photo with its crop outlined (images opened once
    each, from `root`). Returns crops written; an image that cannot be read any more is left without
    them rather than failing the scan."""
    wanted = defaultdict(list)  # image -> [(box, crop name, whole name)]
    for layer, channels in doc["layers"].items():
        for folder in (crop_name(layer, 0, 0), whole_name(layer, 0, 0)):
            os.makedirs(os.path.join(out, os.path.dirname(folder)), exist_ok=True)
        for channel, entries in channels.items():
            for rank, entry in enumerate(entries):
                names = crop_name(layer, int(channel), rank), whole_name(layer, int(channel), rank)
                wanted[entry["image"]].append((entry["box"], *(os.path.join(out, n) for n in names)))
    written = 0
    for image, views in wanted.items():
        try:
            img = open_image(os.path.join(root, image))
        except FeatvizError:
            continue
        for box, crop, whole in views:
            _save_views(img, box, crop, whole)
            written += 1
    tmp = os.path.join(out, DOC + ".part")
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, os.path.join(out, DOC))
    return written


SCAN_SHAPE = {"model": {"digest": str}, "folder": str, "layers": {}}
ENTRY_SHAPE = {"image": str, "box": (float, float, float, float), "activation": float}

def read_scan(directory: str, name: str | None = None) -> dict:
    """A scan's document, checked for the fields the dashboard and the self-check use. Raises
    FeatvizError (without the folder's contents) when it is missing or malformed; its message calls
    the folder `name` (default: its path; the dashboard does not show visitors the server's paths)."""
    path = os.path.join(directory, DOC)
    where, out = (name, "FOLDER") if name else (repr(directory), directory)
    if not os.path.isfile(path):
        raise FeatvizError(f"No {DOC} in {where}: run `python -m featviz_core exemplars ... --out {out}` first.")
    if os.path.getsize(path) > MAX_DOC_BYTES:
        raise FeatvizError(f"{DOC} in {where} is larger than {MAX_DOC_BYTES // 2**20} MiB.")
    try:
        with open(path) as f:
            doc = json.load(f)
        # Checked as data, not with assert (python -O would skip the checks).
        if not matches(doc, SCAN_SHAPE) or not all(matches(entries, [ENTRY_SHAPE])
                                                   for channels in doc["layers"].values()
                                                   for entries in channels.values()):
            raise ValueError("not the shape of a scan")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FeatvizError(f"{DOC} in {where} is not a featviz exemplar scan ({type(exc).__name__}).") from exc
    return doc


def exemplars_of(doc: dict, layer: str, channel: int) -> list[dict]:
    """A channel's exemplars in a scan (best first), or [] when the scan does not cover it."""
    return list(doc["layers"].get(layer, {}).get(str(int(channel)), []))


def picture_peak(model: LoadedModel, picture: np.ndarray, layer: str, channel: int) -> float:
    """A picture's activation measured as exemplars are: fitted to the model's input size, the
    channel's spatial maximum."""
    img = Image.fromarray(picture.squeeze(-1) if picture.shape[-1] == 1 else picture[..., :3])
    from .exemplars import spatial_maxima

    arr, _ = model_input(img.convert("L" if model.in_channels == 1 else "RGB"), model.input_size)
    values, _, _ = spatial_maxima(model, arr[None], [layer])[layer]
    return float(values[0, channel])


def exemplar_ratio(peak: float, exemplars: list[dict]) -> float | None:
    """The picture's peak over its channel's best real photo's (None when that photo does not excite it)."""
    if not exemplars or exemplars[0]["activation"] <= 0:
        return None
    return peak / exemplars[0]["activation"]


def scan_for_model(directory: str, model: LoadedModel) -> dict:
    """The scan in `directory`, refused unless it was made with this model's weights."""
    doc = read_scan(directory)
    if doc["model"]["digest"] != model.digest:
        made_with = doc["model"].get("name", "another model")
        raise FeatvizError(f"The exemplar scan in {directory!r} was made with {made_with} "
                           f"(weights {doc['model']['digest']}), not {model.name} (weights {model.digest}).")
    return doc


def add_ratios(model: LoadedModel, doc: dict, pictures: list[tuple[str, int, np.ndarray]], extras: list[dict]) -> None:
    """The self-check's second opinion for (layer, channel, picture) triples: each picture's peak over
    its channel's best photo, added to the matching `extras` dict where the scan covers the channel."""
    for (layer, channel, picture), extra in zip(pictures, extras):
        top = exemplars_of(doc, layer, channel)
        if not top:
            continue
        ratio = exemplar_ratio(picture_peak(model, picture[..., :model.in_channels], layer, channel), top)
        if ratio is not None:
            extra.update(exemplar_ratio=round(ratio, 4), exemplar_top1=top[0]["image"])
