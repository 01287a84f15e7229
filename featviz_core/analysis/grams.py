"""Gram matrices of layers over a set of images, in sweeps of the forward pass that bound memory.

Each example's features are its whole activation flattened (channels x height x width, as Kornblith et
al. do; averaging over space would blur early layers into their colour means). CKA needs only each
layer's Gram matrix over the examples, K = X X^T (n x n), which is a sum over feature chunks: so a layer
is never held as a features-by-features matrix, and the activations kept at once are bounded by
`max_bytes` (layers are read in sweeps of the forward pass that fit; a layer too wide for it alone is
read a slice of channels per sweep). Capped clamps (ReLU6) are read before the clamp, as everywhere.
"""
from __future__ import annotations

import math
from typing import Callable, Generator, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..models.hooks import LayerTap
from ..models.loading import LoadedModel

MAX_FEATURE_BYTES = 256 * 2**20  # activations held at once while the Grams are summed
COLUMN_CHUNK = 1 << 15  # features per chunk of a Gram's sum
Progress = Callable[[int, int], None]  # (images just done, images added to the total)
Batches = Callable[[], Iterable[torch.Tensor]]  # a fresh pass over the images, batch by batch


def gram(features: torch.Tensor) -> np.ndarray:
    """X X^T (float64) of (n, D) features, summed over column chunks."""
    x = features.reshape(features.shape[0], -1)
    total = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64)
    for start in range(0, x.shape[1], COLUMN_CHUNK):
        part = x[:, start:start + COLUMN_CHUNK].double()
        total += part @ part.T
    return total.numpy()


def sweeps(model: LoadedModel, layers: Sequence[str], n: int, size: int,
           max_bytes: int) -> list[list[tuple[str, int, int]]]:
    """(layer, first channel, end channel) slices, packed into sweeps of at most `max_bytes`."""
    scale = (size / model.input_size) ** 2
    packed, current, used = [], [], 0
    for layer in dict.fromkeys(layers):
        info = model.info(layer)
        per_channel = 4 * n * max(1, math.ceil(info.height * info.width * scale))
        step = max(1, min(info.channels, max_bytes // per_channel))
        for lo in range(0, info.channels, step):
            cost = per_channel * (min(info.channels, lo + step) - lo)
            if current and used + cost > max_bytes:
                packed.append(current)
                current, used = [], 0
            current.append((layer, lo, min(info.channels, lo + step)))
            used += cost
    return packed + [current] if current else packed


SweepSteps = Generator[tuple[int, int], None, dict]  # yields (images read, 0) per batch; returns the Grams


@torch.no_grad()
def _sweep(model: LoadedModel, items: list[tuple[str, int, int]], batches: Batches, n: int) -> SweepSteps:
    kept: dict[tuple[str, int, int], torch.Tensor] = {}  # filled in place: no second copy to concatenate
    start = 0
    with LayerTap(model.module, [item[0] for item in items]) as tap:
        for part in batches():
            outputs = tap.run(model.normalize(part.to(model.device)))
            for layer, lo, hi in items:
                features = outputs[layer][:, lo:hi].float().reshape(len(part), -1)
                if (layer, lo, hi) not in kept:
                    kept[(layer, lo, hi)] = torch.empty(n, features.shape[1])
                kept[(layer, lo, hi)][start:start + len(part)] = features.cpu()
            start += len(part)
            yield len(part), 0
    return {item: gram(features) for item, features in kept.items()}


def layer_parts(model: LoadedModel, layers: Sequence[str], batches: Batches, n: int, size: int,
                max_bytes: int = MAX_FEATURE_BYTES) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """The Grams of `layers` over n images of `size` px (a pass of `batches` per sweep): yields (images
    just read, {}) per batch and, after each sweep, (0, {layer: Gram}) of the layers it completed (a
    layer is complete after the last sweep holding a slice of it), so each can be kept at once."""
    planned = sweeps(model, [model.resolve_layer(layer) for layer in layers], n, size, max_bytes)
    last = {layer: i for i, items in enumerate(planned) for layer, _, _ in items}
    grams = {layer: np.zeros((n, n)) for layer in last}
    for i, items in enumerate(planned):
        sweep = _sweep(model, items, batches, n)
        while True:
            try:
                read, _ = next(sweep)
            except StopIteration as stop:
                parts = stop.value
                break
            yield read, {}
        for (layer, _, _), part in parts.items():
            grams[layer] += part
        yield 0, {layer: grams.pop(layer) for layer in [name for name in grams if last[name] == i]}


def model_grams(model: LoadedModel, layers: Sequence[str], images: torch.Tensor, batch: int = 16,
                max_bytes: int = MAX_FEATURE_BYTES) -> dict[str, np.ndarray]:
    """{layer: n x n Gram of its flattened activations} over `images` ((n, C, H, W) in [0, 1]) in memory."""
    def batches():
        return (images[s:s + batch] for s in range(0, len(images), batch))

    grams = {}
    for _, complete in layer_parts(model, layers, batches, len(images), images.shape[-1], max_bytes):
        grams.update(complete)
    return {name: grams[name] for name in (model.resolve_layer(layer) for layer in layers)}
