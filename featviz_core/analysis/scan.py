"""The exemplar scan as a batch job: folder -> shards -> the driver -> one merged, boxed result.

The driver (jobs/driver.py) runs the shards, in this process or on Ray workers as it runs the
atlas, and is the only code that writes them into the store. Each finished shard's top-k lists are
stored under a key naming the model's weights, the layers, k, the folder's identity (file list,
sizes, modification times) and the shard, so a killed scan resumes from the shards it had finished
and a finished scan is read back without a forward pass.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from ..backends.work import Finished, ModelSource
from ..errors import FeatvizError
from ..inputs.imagefolder import FolderListing, Geometry, listed_images
from ..jobs.driver import drive_cached, keep
from ..models.loading import LoadedModel
from ..spec.settings import check_batch_size
from ..store.disk import Store
from ..store.lookup import cached_json
from .exemplars import BATCH, ScanShard, merge_lists
from .receptive import ReceptiveField, measure

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


def plan_shards(listing: FolderListing, layers: Sequence[str], k: int, shard_size: int,
                batch: int = BATCH) -> list[ScanShard]:
    paths = listing.paths
    return [ScanShard(listing.root, tuple(paths[s:s + shard_size]), s, tuple(layers), k, batch)
            for s in range(0, len(paths), shard_size)]


def receptive_field(model: LoadedModel, layer: str, store: Store | None) -> ReceptiveField:
    """The layer's measured receptive field, kept in the store (one probe per model and layer)."""
    parts = ("exemplars:rf", SCAN_VERSION, model.digest, model.input_size, layer)
    return ReceptiveField.from_json(cached_json(store, parts, lambda: measure(model, layer).to_json(), [float]))


def check_request(model: LoadedModel, layers: Sequence[str], k: int) -> list[str]:
    """Canonical layer names (aliases allowed); raises FeatvizError naming the valid choices."""
    if not 1 <= k <= MAX_TOP:
        raise FeatvizError(f"--top {k} is out of range: keep between 1 and {MAX_TOP} images per channel.")
    names = [model.resolve_layer(layer) for layer in layers]
    if not names:
        raise FeatvizError("Name at least one layer to scan.")
    flat = [n for n in names if model.info(n).height <= 1]
    if flat:
        raise FeatvizError(f"Layer {flat[0]!r} has no spatial map to find exemplar positions in: choose a conv layer.")
    return list(dict.fromkeys(names))


class Merge:
    """The running merge of shard results, taken in any order: exact, since every list is cut in the
    same total order (exemplars.merge_lists). Only the merged lists are kept, not every shard's."""

    def __init__(self, model: LoadedModel, layers: Sequence[str], k: int):
        self.k = k
        self.lists = {layer: [[] for _ in range(model.info(layer).channels)] for layer in layers}
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


def _entry(model: LoadedModel, rf: ReceptiveField, path: str, size: list[int], pos: int, width: int,
           act: float) -> dict:
    row, col = divmod(int(pos), width)
    geo = Geometry.fit(size[0], size[1], model.input_size)
    return {"image": path, "box": geo.to_original(rf.box(row, col, model.input_size)), "activation": act,
            "unit": [row, col], "size": size}


def _shard_shape(model: LoadedModel, layers: Sequence[str]) -> tuple[dict, Callable[[dict], bool]]:
    """A stored shard's shape, and its check that every layer has a list per channel (else it runs again)."""
    shape = {"layers": {layer: [[list]] for layer in layers}, "width": {layer: int for layer in layers},
             "sizes": list, "skipped": {}, "forwards": int}
    return shape, lambda result: all(len(result["layers"][n]) == model.info(n).channels for n in layers)


def _run_shards(model: LoadedModel, shards: list[ScanShard], key: str, merge: Merge, store: Store | None,
                source: ModelSource, ray: str | bool | None, workers: int | None) -> Iterator[ScanProgress]:
    """The shards through the driver (the store's first), merged as each arrives; progress events, the
    first once the stored shards are merged (with the first shard run, or at the end)."""
    total = sum(s.units for s in shards)
    keyed = [(f"exemplars:shard:{key}:{n}", shard) for n, shard in enumerate(shards)]
    shape, valid = _shard_shape(model, merge.lists)
    progress, resumed = None, 0
    for n, event in drive_cached(keyed, store, source, model=model, ray=ray, workers=workers, shape=shape,
                                 valid=valid):
        if not isinstance(event, Finished):
            continue
        merge.add(shards[n], event.result)
        if event.cached:
            resumed += shards[n].units
            continue
        if progress is None:
            progress = ScanProgress(resumed, total, resumed)
            yield progress
        progress = ScanProgress(progress.done + shards[n].units, total, resumed, None,
                                progress.forwards + event.result["forwards"], [n])
        yield progress
    if progress is None:  # every shard was stored
        yield ScanProgress(resumed, total, resumed)


def scan_folder(model: LoadedModel, folder: str, layers: Sequence[str], k: int = 9, store: Store | None = None,
                shard_size: int = SHARD, batch: int = BATCH, ray: str | bool | None = None,
                workers: int | None = None, source: ModelSource | None = None) -> Iterator[ScanProgress]:
    """Scan `folder` for the top `k` images of every channel of `layers`, yielding progress; the last
    event carries the result (the exemplars.json document). Finished shards are kept in `store`."""
    check_batch_size(batch)
    layers = check_request(model, layers, k)
    listing = listed_images(folder)
    key = scan_key(model, layers, k, listing, shard_size)
    final = store.get_json(f"exemplars:result:{key}") if store is not None else None
    total = len(listing.files)
    if final is not None:
        yield ScanProgress(total, total, total, {**final, "folder": folder})
        return
    merge, last = Merge(model, layers, k), None
    for last in _run_shards(model, plan_shards(listing, layers, k, shard_size, batch), key, merge, store,
                            source or ModelSource(model.name), ray, workers):
        yield last
    doc = {**assemble(model, listing, folder, merge, store), "scan_key": key}
    keep(store, doc, f"exemplars:result:{key}")
    yield ScanProgress(total, total, last.resumed, doc, last.forwards)
