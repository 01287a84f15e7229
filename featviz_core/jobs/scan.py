"""The scan driver: folder -> shards -> workers -> store -> one merged, boxed result.

The driver is the only process that touches the store. Each finished shard's top-k lists are stored
under a key naming the model's weights, the layers, k, the folder's identity (file list, sizes,
modification times) and the shard, so a killed scan resumes from the shards it had finished and a
finished scan is read back without a forward pass. Shards run in this process, or on Ray workers
through `workers.run_work` (the same backend the atlas uses).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from ..errors import FeatvizError
from ..analysis.exemplars import BATCH, ScanShard, merge_lists
from ..inputs.imagefolder import FolderListing, Geometry, list_images
from ..models.loading import LoadedModel
from ..analysis.receptive import ReceptiveField, measure
from ..store.disk import Store
from ..backends.work import ModelSource, run_work

SCAN_VERSION = 1
SHARD = 256  # images per shard: a resumed scan loses at most this much work
MAX_TOP = 100


@dataclass
class ScanProgress:
    """An event from scan_folder: images done (finished shards, resumed ones included) of all."""

    done: int
    total: int
    resumed: int = 0  # images whose shards came from the store
    result: dict | None = None  # the merged result, on the last event
    forwards: int = 0  # forward passes this run has made so far
    shards: list[int] = field(default_factory=list)  # shards finished by this event


def scan_key(model: LoadedModel, layers: Sequence[str], k: int, listing: FolderListing, shard_size: int) -> str:
    doc = [SCAN_VERSION, model.digest, model.input_size, list(layers), k, listing.identity(), shard_size]
    return hashlib.blake2b(json.dumps(doc).encode(), digest_size=12).hexdigest()


def plan_shards(listing: FolderListing, layers: Sequence[str], k: int, shard_size: int, batch: int = BATCH) -> list[ScanShard]:
    paths = listing.paths
    return [ScanShard(listing.root, tuple(paths[s:s + shard_size]), s, tuple(layers), k, batch)
            for s in range(0, len(paths), shard_size)]


def _run_shards(model: LoadedModel, shards: dict[int, ScanShard], ray, workers, source) -> Iterator[tuple[int, Any]]:
    """(shard number, result) as each finishes, through the worker backend the atlas uses too."""
    numbers = list(shards)
    source = source or ModelSource(model.name)
    for i, result in run_work(source, [shards[n] for n in numbers], ray=ray, workers=workers, model=model):
        yield numbers[i], result


def receptive_field(model: LoadedModel, layer: str, store: Store | None) -> ReceptiveField:
    key = f"exemplars:rf:{SCAN_VERSION}:{model.digest}:{model.input_size}:{layer}"
    cached = store.get_json(key) if store is not None else None
    if cached is not None:
        return ReceptiveField.from_json(cached)
    rf = measure(model, layer)
    if store is not None:
        store.put_json(key, rf.to_json())
    return rf


def check_request(model: LoadedModel, layers: Sequence[str], k: int) -> list[str]:
    """Canonical layer names (aliases allowed); raises FeatvizError naming the valid choices."""
    if not 1 <= k <= MAX_TOP:
        raise FeatvizError(f"--top {k} is out of range: keep between 1 and {MAX_TOP} images per channel.")
    names = [model.resolve_layer(layer) for layer in layers]
    if not names:
        raise FeatvizError("Name at least one layer to scan.")
    flat = [n for n in names if model.layers[n].height <= 1]
    if flat:
        raise FeatvizError(f"Layer {flat[0]!r} has no spatial map to find exemplar positions in: choose a conv layer.")
    return list(dict.fromkeys(names))


class Merge:
    """The running merge of shard results, taken in any order: exact, since every list is cut in the
    same total order (exemplars.merge_lists). Only the merged lists are kept, not every shard's."""

    def __init__(self, model: LoadedModel, layers: Sequence[str], k: int):
        self.k = k
        self.lists = {layer: [[] for _ in range(model.layers[layer].channels)] for layer in layers}
        self.sizes: dict[int, list[int]] = {}  # global image index -> [width, height], readable images
        self.skipped: dict[str, int] = {}
        self.widths: dict[str, int] = {}

    def add(self, shard: ScanShard, result: dict) -> None:
        for layer in self.lists:
            self.lists[layer] = merge_lists(self.lists[layer], result["layers"][layer], self.k)
        self.widths.update(result["width"])
        for reason, count in result["skipped"].items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count
        self.sizes.update({shard.start + i: size for i, size in enumerate(result["sizes"]) if size})


def assemble(model: LoadedModel, listing: FolderListing, folder: str, merge: Merge, store: Store | None) -> dict:
    """The merged lists as exemplars.json: each entry an image path, a box and an activation."""
    paths, out = listing.paths, {}
    for layer, lists in merge.lists.items():
        rf = receptive_field(model, layer, store)
        out[layer] = {str(c): [_entry(model, rf, paths[img], merge.sizes[img], pos, merge.widths[layer], act)
                               for act, img, pos in entries] for c, entries in enumerate(lists)}
    skipped = dict(listing.skipped)
    for reason, count in merge.skipped.items():
        skipped[reason] = skipped.get(reason, 0) + count
    return {"model": {"name": model.name, "digest": model.digest, "input_size": model.input_size},
            "folder": folder, "images": len(merge.sizes), "skipped": skipped, "top": merge.k, "layers": out}


def _entry(model: LoadedModel, rf: ReceptiveField, path: str, size: list[int], pos: int, width: int, act: float) -> dict:
    row, col = divmod(int(pos), width)
    geo = Geometry.fit(size[0], size[1], model.input_size)
    return {"image": path, "box": geo.to_original(rf.box(row, col, model.input_size)), "activation": act,
            "unit": [row, col], "size": size}


def scan_folder(model: LoadedModel, folder: str, layers: Sequence[str], k: int = 9, store: Store | None = None,
                shard_size: int = SHARD, batch: int = BATCH, ray: str | bool | None = None,
                workers: int | None = None, source=None) -> Iterator[ScanProgress]:
    """Scan `folder` for the top `k` images of every channel of `layers`, yielding progress; the last
    event carries the result (the exemplars.json document). Finished shards are kept in `store`."""
    layers = check_request(model, layers, k)
    listing = list_images(folder)
    if not listing.files:
        found = ", ".join(f"{n} {reason}" for reason, n in listing.skipped.items()) or "it is empty"
        raise FeatvizError(f"Image folder {folder!r} holds no JPEG, PNG or WebP files ({found}).")
    key = scan_key(model, layers, k, listing, shard_size)
    final = store.get_json(f"exemplars:result:{key}") if store is not None else None
    total = len(listing.files)
    if final is not None:
        yield ScanProgress(total, total, total, {**final, "folder": folder})
        return
    shards = plan_shards(listing, layers, k, shard_size, batch)
    merge, todo = Merge(model, layers, k), {}
    for n, shard in enumerate(shards):
        stored = store.get_json(f"exemplars:shard:{key}:{n}") if store is not None else None
        if stored is None:
            todo[n] = shard
        else:
            merge.add(shard, stored)
    resumed = total - sum(s.units for s in todo.values())
    progress = ScanProgress(resumed, total, resumed)
    yield progress
    for n, result in _run_shards(model, todo, ray, workers, source):
        merge.add(shards[n], result)
        if store is not None:
            store.put_json(f"exemplars:shard:{key}:{n}", result)
        progress = ScanProgress(progress.done + shards[n].units, total, resumed, None, progress.forwards + result["forwards"], [n])
        yield progress
    doc = assemble(model, listing, folder, merge, store)
    doc["scan_key"] = key
    if store is not None:
        store.put_json(f"exemplars:result:{key}", doc)
    yield ScanProgress(total, total, resumed, doc, progress.forwards)
