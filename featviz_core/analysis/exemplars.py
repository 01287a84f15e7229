"""Dataset exemplars: for every channel, the photos of a folder that excite it most, and where.

A scan is a list of `ScanShard` work items (consecutive runs of the sorted file list). A shard feeds
its images in batches, one forward pass per batch for all chosen layers at once, takes each channel's
spatial maximum per image (and where it is), and keeps each channel's top k images. Shards merge
exactly: the top k of a union is the top k of the shards' top-k lists, as long as every list is cut
in the same total order, here (activation descending, image index ascending); within an image the
first maximal position in row-major order wins. So any split of the folder, on any number of workers,
gives the same lists as one pass.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import FeatvizError
from ..inputs.imagefolder import model_input, open_image
from ..models.hooks import LayerTap
from ..models.loading import LoadedModel

BATCH = 16  # images per forward pass

# A channel's top-k list: [activation, global image index, flat position (row * width + col) of the
# maximum in the layer's map] triples, best first. Plain lists: picklable and JSON-able.
Entry = list
TopK = list[Entry]


def order_key(entry: Entry) -> tuple[float, int]:
    """The one total order every list is cut in: activation descending, then image index ascending."""
    return -entry[0], entry[1]


def merge_lists(a: Sequence[TopK], b: Sequence[TopK], k: int) -> list[TopK]:
    """Per channel, the top k of two top-k lists (exact, since both were cut in `order_key` order)."""
    return [sorted(list(x) + list(y), key=order_key)[:k] for x, y in zip(a, b)]


@torch.no_grad()
def spatial_maxima(model: LoadedModel, images: np.ndarray, layers: Sequence[str]) -> dict[str, tuple]:
    """One forward pass of NxHxWxC uint8 images (at the model's input size) -> per layer
    (values NxC, flat positions NxC of the first maximum in row-major order, map width)."""
    x = torch.from_numpy(images).to(model.device).permute(0, 3, 1, 2).float() / 255
    with LayerTap(model.module, layers) as tap:
        outputs = tap.run(model.normalize(x))
    maxima = {}
    for layer in layers:
        act = outputs[layer].float()
        values, positions = torch.nan_to_num(act.flatten(2), nan=-float("inf")).max(dim=2)
        maxima[layer] = (values.cpu(), positions.cpu(), act.shape[-1])
    return maxima


def _as_lists(values: torch.Tensor, positions: torch.Tensor, images: Sequence[int]) -> list[TopK]:
    """NxC maxima of N images -> per channel the (unsorted) entries of every image."""
    vals, pos = values.t().tolist(), positions.t().tolist()
    return [[[v, i, p] for v, i, p in zip(vc, images, pc)] for vc, pc in zip(vals, pos)]


@dataclass(frozen=True)
class ScanShard:
    """Images `files[i]` (paths relative to `root`, global index `start + i`) scanned for `layers`."""

    root: str
    files: tuple[str, ...]
    start: int
    layers: tuple[str, ...]
    k: int
    batch: int = BATCH

    @property
    def units(self) -> int:
        return len(self.files)

    def _batches(self, model: LoadedModel, sizes: list, skipped: dict) -> Iterator[tuple[np.ndarray, list[int]]]:
        """Readable images in batches at the model's input size; fills `sizes` and counts `skipped`."""
        arrays, index = [], []
        for i, rel in enumerate(self.files):
            try:
                img = open_image(os.path.join(self.root, rel), model.in_channels)
            except FeatvizError as exc:
                reason = str(exc).split(" (")[0]
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
            arr, geo = model_input(img, model.input_size)
            sizes[i] = [geo.width, geo.height]
            arrays.append(arr)
            index.append(self.start + i)
            if len(arrays) == self.batch:
                yield np.stack(arrays), index
                arrays, index = [], []
        if arrays:
            yield np.stack(arrays), index

    def run(self, model: LoadedModel) -> dict:
        """{"layers": {layer: [TopK per channel]}, "width": {layer: map width}, "sizes": [[w, h] or
        None per file], "skipped": {reason: count}, "forwards": forward passes made}."""
        sizes: list = [None] * len(self.files)
        skipped: dict[str, int] = {}
        lists = {layer: [[] for _ in range(model.info(layer).channels)] for layer in self.layers}
        widths, forwards = {}, 0
        for arrays, index in self._batches(model, sizes, skipped):
            forwards += 1
            for layer, (values, positions, width) in spatial_maxima(model, arrays, self.layers).items():
                widths[layer] = width
                lists[layer] = merge_lists(lists[layer], _as_lists(values, positions, index), self.k)
        return {"layers": lists, "width": widths, "sizes": sizes, "skipped": skipped, "forwards": forwards}
