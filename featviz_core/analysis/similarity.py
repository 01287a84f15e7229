"""Layer-by-layer similarity: linear CKA (Kornblith et al. 2019, "Similarity of Neural Network
Representations Revisited") between the layers of one model, or of two, over a set of photos.

Each example's features are its whole activation flattened (channels x height x width, as Kornblith et
al. do; averaging over space would blur early layers into their colour means). CKA needs only each
layer's Gram matrix over the examples, K = X X^T (n x n), which is a sum over feature chunks: so a layer
is never held as a features-by-features matrix, and the activations kept at once are bounded by
`max_bytes` (layers are read in sweeps of the forward pass that fit; a layer too wide for it alone is
read a slice of channels per sweep). Capped clamps (ReLU6) are read before the clamp, as everywhere.

    cka = cka_matrix(model, ["blocks.1", "blocks.4", "blocks.5"])  # [[1.0, 0.4, ...], ...]

The Grams are a batch job: what the store lacks is one GramWork per model through the driver
(jobs/driver.py), in this process (with progress) or on Ray (`ray=`), and kept per layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Generator, Sequence

import numpy as np
import torch

from ..backends.work import Finished, ModelSource, Step
from ..jobs.driver import drive, keep
from ..models.hooks import LayerTap
from ..models.loading import LoadedModel
from ..store.disk import Store
from ..store.lookup import json_key, lookup_json
from .photoset import PhotoSet

CKA_VERSION = 1  # bump when the same request would give other Grams or other numbers
MAX_FEATURE_BYTES = 256 * 2**20  # activations held at once while the Grams are summed
COLUMN_CHUNK = 1 << 15  # features per chunk of a Gram's sum
Progress = Callable[[int, int], None]  # (images just done, images added to the total)


def centered(gram: np.ndarray) -> np.ndarray:
    """H K H with H = I - 11^T / n: the Gram of the features minus their mean over the examples."""
    k = np.asarray(gram, dtype=np.float64)
    return k - k.mean(axis=0, keepdims=True) - k.mean(axis=1, keepdims=True) + k.mean()


def linear_cka(gram_x: np.ndarray, gram_y: np.ndarray) -> float:
    """Linear CKA from two Gram matrices over the same n examples: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),
    with the biased HSIC <HKH, HLH>_F. 1 for the same features up to rotation and scale; 0 where
    either is constant over the examples (it carries no information to share)."""
    kx, ky = centered(gram_x), centered(gram_y)
    if kx.shape != ky.shape or kx.shape[0] != kx.shape[1]:
        raise ValueError(f"linear_cka needs two n x n Grams over the same examples, got {kx.shape} and {ky.shape}")
    norm = math.sqrt(float((kx * kx).sum()) * float((ky * ky).sum()))
    return float((kx * ky).sum()) / norm if norm > 0 else 0.0


def gram(features: torch.Tensor) -> np.ndarray:
    """X X^T (float64) of (n, D) features, summed over column chunks."""
    x = features.reshape(features.shape[0], -1)
    total = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64)
    for start in range(0, x.shape[1], COLUMN_CHUNK):
        part = x[:, start:start + COLUMN_CHUNK].double()
        total += part @ part.T
    return total.numpy()


def _sweeps(model: LoadedModel, layers: Sequence[str], n: int, size: int,
            max_bytes: int) -> list[list[tuple[str, int, int]]]:
    """(layer, first channel, end channel) slices, packed into sweeps of at most `max_bytes`."""
    scale = (size / model.input_size) ** 2
    sweeps, current, used = [], [], 0
    for layer in dict.fromkeys(layers):
        info = model.info(layer)
        per_channel = 4 * n * max(1, math.ceil(info.height * info.width * scale))
        step = max(1, min(info.channels, max_bytes // per_channel))
        for lo in range(0, info.channels, step):
            cost = per_channel * (min(info.channels, lo + step) - lo)
            if current and used + cost > max_bytes:
                sweeps.append(current)
                current, used = [], 0
            current.append((layer, lo, min(info.channels, lo + step)))
            used += cost
    return sweeps + [current] if current else sweeps


Steps = Generator[tuple[int, int], None, dict]  # yields Progress's (done, added); returns the Grams


@torch.no_grad()
def _sweep(model: LoadedModel, items: list[tuple[str, int, int]], images: torch.Tensor, batch: int) -> Steps:
    kept: dict[tuple[str, int, int], torch.Tensor] = {}  # filled in place: no second copy to concatenate
    with LayerTap(model.module, [item[0] for item in items]) as tap:
        for start in range(0, len(images), batch):
            part = images[start:start + batch]
            outputs = tap.run(model.normalize(part.to(model.device)))
            for layer, lo, hi in items:
                features = outputs[layer][:, lo:hi].float().reshape(len(part), -1)
                if (layer, lo, hi) not in kept:
                    kept[(layer, lo, hi)] = torch.empty(len(images), features.shape[1])
                kept[(layer, lo, hi)][start:start + len(part)] = features.cpu()
            yield len(part), 0
    return {item: gram(features) for item, features in kept.items()}


def gram_steps(model: LoadedModel, layers: Sequence[str], images: torch.Tensor, batch: int = 16,
               max_bytes: int = MAX_FEATURE_BYTES) -> Steps:
    """model_grams as a generator of its progress: (0, total) first, then (images done, 0) per batch."""
    names = [model.resolve_layer(layer) for layer in layers]
    sweeps = _sweeps(model, names, len(images), images.shape[-1], max_bytes)
    yield 0, len(images) * len(sweeps)
    grams = {name: np.zeros((len(images), len(images))) for name in names}
    for items in sweeps:
        for (layer, _, _), part in (yield from _sweep(model, items, images, batch)).items():
            grams[layer] += part
    return grams


def model_grams(model: LoadedModel, layers: Sequence[str], images: torch.Tensor, batch: int = 16,
                max_bytes: int = MAX_FEATURE_BYTES, done: Progress | None = None) -> dict[str, np.ndarray]:
    """{layer: n x n Gram of its flattened activations} over `images` ((n, C, H, W) in [0, 1])."""
    steps = gram_steps(model, layers, images, batch, max_bytes)
    while True:
        try:
            n, more = next(steps)
        except StopIteration as stop:
            return stop.value
        if done:
            done(n, more)


@dataclass(frozen=True)
class GramWork:
    """One model's Grams of `layers` over `photos`, as a work item for the backends (backends/work.py):
    `run` returns {"layers": [...], "n": n, "grams": [n x n nested lists, one per layer]}."""

    layers: tuple[str, ...]
    photos: PhotoSet = PhotoSet()
    batch: int = 16
    max_bytes: int = MAX_FEATURE_BYTES

    @property
    def units(self) -> int:
        return self.photos.count()

    def run(self, model: LoadedModel, done: Progress | None = None) -> dict:
        images = self.photos.images(model.in_channels)
        return _doc(len(images), model_grams(model, self.layers, images, self.batch, self.max_bytes, done))

    def stream(self, model: LoadedModel):
        """In this process: a Step per batch (`done`: images read, over every sweep), then Finished."""
        images = self.photos.images(model.in_channels)
        steps, done = gram_steps(model, self.layers, images, self.batch, self.max_bytes), 0
        while True:
            try:
                done += next(steps)[0]
            except StopIteration as stop:
                yield Finished(_doc(len(images), stop.value))
                return
            yield Step(done)


def _doc(n: int, grams: dict[str, np.ndarray]) -> dict:
    return {"layers": list(grams), "n": n, "grams": [g.tolist() for g in grams.values()]}


def _gram_key(model: LoadedModel, layer: str, photos: PhotoSet) -> tuple:
    return ("gram", CKA_VERSION, model.digest, layer, photos.identity(model.in_channels))


def layer_grams(model: LoadedModel, layers: Sequence[str], photos: PhotoSet | None = None, store: Store | None = None,
                batch: int = 16, max_bytes: int = MAX_FEATURE_BYTES, done: Progress | None = None,
                ray: str | bool | None = None, model_source: ModelSource | None = None) -> dict[str, np.ndarray]:
    """{layer: Gram} over `photos` (default: the natural photos at the model's size), each layer's
    kept in the store (by weights digest, layer and photo set), so only missing layers are computed:
    as one GramWork through the driver, in this process or on Ray actors loading `model_source`."""
    photos = photos or PhotoSet(size=model.input_size)
    names = [model.resolve_layer(layer) for layer in layers]
    n = photos.count(model.in_channels)
    grams = {}
    for name in dict.fromkeys(names):
        doc = lookup_json(store, _gram_key(model, name, photos), [[float]], valid=lambda g: len(g) == n)
        if doc is not None:
            grams[name] = np.asarray(doc, dtype=np.float64)
    missing = tuple(name for name in dict.fromkeys(names) if name not in grams)
    if missing:
        for name, g in _run_grams(model, GramWork(missing, photos, batch, max_bytes), store, done, ray,
                                  model_source).items():
            grams[name] = np.asarray(g, dtype=np.float64)
    return {name: grams[name] for name in names}


def _run_grams(model: LoadedModel, work: GramWork, store: Store | None, done: Progress | None,
               ray: str | bool | None, model_source: ModelSource | None) -> dict[str, list]:
    """The work item through the driver; each layer's Gram kept under its own key as it arrives."""
    total = work.units * len(_sweeps(model, work.layers, work.units, work.photos.size, work.max_bytes))
    seen, fresh = 0, None
    if done:
        done(0, total)
    for _, event in drive([work], store, model_source or ModelSource(model.name), model=model, ray=ray):
        if isinstance(event, Step) and done:
            done(event.done - seen, 0)
            seen = event.done
        elif isinstance(event, Finished):
            fresh = dict(zip(event.result["layers"], event.result["grams"]))
    for name, g in fresh.items():
        keep(store, g, json_key(_gram_key(model, name, work.photos)))
    if done and seen < total:
        done(total - seen, 0)  # a Ray worker reports once, when it is done
    return fresh


def similarity_key(model: LoadedModel, layers: Sequence[str], model2: LoadedModel, layers2: Sequence[str],
                   photos: PhotoSet) -> tuple:
    """The store key of a CKA matrix: version, both models' weights digests and layers, the photos."""
    return ("cka", CKA_VERSION, model.digest, ",".join(layers), model2.digest, ",".join(layers2),
            photos.identity(model.in_channels), photos.identity(model2.in_channels))


def cka_matrix(model: LoadedModel, layers: Sequence[str], photos: PhotoSet | None = None,
               model2: LoadedModel | None = None, layers2: Sequence[str] | None = None, batch: int = 16,
               store: Store | None = None, max_bytes: int = MAX_FEATURE_BYTES, done: Progress | None = None,
               ray: str | bool | None = None, sources: Sequence[ModelSource] | None = None) -> list[list[float]]:
    """cka[i][j] = linear CKA between `layers[i]` of `model` and `layers2[j]` of `model2` (default: the
    same model and layers) over the same photos (default: the natural photos and their crops at the
    first model's input size). A batch job through the driver (`ray`; `sources`: the models' recipes
    for Ray workers), cached in the store, as are the Grams it is made of."""
    model2 = model2 or model
    photos = photos or PhotoSet(size=model.input_size)
    names = [model.resolve_layer(layer) for layer in layers]
    names2 = [model2.resolve_layer(layer) for layer in (layers2 or layers)]
    parts = similarity_key(model, names, model2, names2, photos)
    doc = lookup_json(store, parts, {"cka": [[float]]},
                      valid=lambda d: len(d["cka"]) == len(names) and all(len(r) == len(names2) for r in d["cka"]))
    if doc is not None:
        return doc["cka"]
    first, second = (list(sources) + [None, None])[:2] if sources else (None, None)
    if model2 is model:
        grams = grams2 = layer_grams(model, names + names2, photos, store, batch, max_bytes, done, ray, first)
    else:
        grams = layer_grams(model, names, photos, store, batch, max_bytes, done, ray, first)
        grams2 = layer_grams(model2, names2, photos, store, batch, max_bytes, done, ray, second)
    cka = [[linear_cka(grams[a], grams2[b]) for b in names2] for a in names]
    keep(store, {"cka": cka}, json_key(parts))
    return cka
