"""Layer-by-layer similarity: linear CKA (Kornblith et al. 2019, "Similarity of Neural Network
Representations Revisited") between the layers of one model, or of two, over a set of photos.

Each example's features are its whole activation flattened (channels x height x width, as Kornblith et
al. do; averaging over space would blur early layers into their colour means). CKA needs only each
layer's Gram matrix over the examples, K = X X^T (n x n), which is a sum over feature chunks: so a layer
is never held as a features-by-features matrix, and the activations kept at once are bounded by
`max_bytes` (layers are read in sweeps of the forward pass that fit; a layer too wide for it alone is
read a slice of channels per sweep). Capped clamps (ReLU6) are read before the clamp, as everywhere.

    cka = cka_matrix(model, ["blocks.1", "blocks.4", "blocks.5"])  # [[1.0, 0.4, ...], ...]
    doc = cka_doc(model, layers)  # {"cka", "cka_ci": [[[lo, hi], ...], ...], "n", "photos"}

The estimator (debiased HSIC) and its interval are in cka.py. The Grams are a batch job: one GramWork
per layer through the driver's drive_cached (jobs/driver.py), in this process (with progress) or on Ray
(`ray=`), each layer's Gram stored the moment it is done, so a killed run keeps every finished layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Generator, Iterable, Sequence

import numpy as np
import torch

from ..backends.work import Finished, ModelSource, Step
from ..jobs.driver import drive_cached, keep
from ..models.hooks import LayerTap
from ..models.loading import LoadedModel
from ..store.disk import Store
from ..store.lookup import json_key, lookup_json
from .cka import CKA_VERSION, check_photos, cka_interval, cka_matrix_of, similarity_key
from .photoset import PhotoSet

MAX_FEATURE_BYTES = 256 * 2**20  # activations held at once while the Grams are summed
COLUMN_CHUNK = 1 << 15  # features per chunk of a Gram's sum
Progress = Callable[[int, int], None]  # (images just done, images added to the total)
Batches = Callable[[], Iterable[torch.Tensor]]  # a fresh pass over the images, batch by batch
GRAM_DOC = {"layers": [str], "n": int, "grams": [[[float]]]}


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
def _sweep(model: LoadedModel, items: list[tuple[str, int, int]], batches: Batches, n: int) -> Steps:
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


def gram_steps(model: LoadedModel, layers: Sequence[str], batches: Batches, n: int, size: int,
               max_bytes: int = MAX_FEATURE_BYTES) -> Steps:
    """The Grams of `layers` over n images of `size` px (a pass of `batches` per sweep), as a generator
    of its progress: (0, total) first, then (images done, 0) per batch; returns {layer: Gram}."""
    names = [model.resolve_layer(layer) for layer in layers]
    sweeps = _sweeps(model, names, n, size, max_bytes)
    yield 0, n * len(sweeps)
    grams = {name: np.zeros((n, n)) for name in names}
    for items in sweeps:
        for (layer, _, _), part in (yield from _sweep(model, items, batches, n)).items():
            grams[layer] += part
    return grams


def model_grams(model: LoadedModel, layers: Sequence[str], images: torch.Tensor, batch: int = 16,
                max_bytes: int = MAX_FEATURE_BYTES, done: Progress | None = None) -> dict[str, np.ndarray]:
    """{layer: n x n Gram of its flattened activations} over `images` ((n, C, H, W) in [0, 1])."""
    def batches():
        return (images[s:s + batch] for s in range(0, len(images), batch))

    return _finish(gram_steps(model, layers, batches, len(images), images.shape[-1], max_bytes), done)


def _finish(steps: Steps, done: Progress | None) -> dict[str, np.ndarray]:
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

    def _steps(self, model: LoadedModel) -> Steps:
        n = self.photos.count(model.in_channels)
        return gram_steps(model, self.layers, lambda: self.photos.batches(model.in_channels, self.batch), n,
                          self.photos.size, self.max_bytes)

    def run(self, model: LoadedModel, done: Progress | None = None) -> dict:
        return _doc(self.photos.count(model.in_channels), _finish(self._steps(model), done))

    def stream(self, model: LoadedModel):
        """In this process: a Step per batch (`done`: images read, over every sweep), then Finished."""
        steps, done = self._steps(model), 0
        while True:
            try:
                done += next(steps)[0]
            except StopIteration as stop:
                yield Finished(_doc(self.photos.count(model.in_channels), stop.value))
                return
            yield Step(done)


def _doc(n: int, grams: dict[str, np.ndarray]) -> dict:
    return {"layers": list(grams), "n": n, "grams": [g.tolist() for g in grams.values()]}


def _gram_key(model: LoadedModel, layer: str, photos: PhotoSet) -> str:
    return json_key(("gram", CKA_VERSION, model.digest, layer, photos.identity(model.in_channels)))


def layer_grams(model: LoadedModel, layers: Sequence[str], photos: PhotoSet | None = None, store: Store | None = None,
                batch: int = 16, max_bytes: int = MAX_FEATURE_BYTES, done: Progress | None = None,
                ray: str | bool | None = None, model_source: ModelSource | None = None) -> dict[str, np.ndarray]:
    """{layer: Gram} over `photos` (default: the natural photos at the model's size): one GramWork per
    layer through drive_cached, so the store's layers are read back, the rest run in this process or on
    Ray actors loading `model_source`, and each is stored as it finishes (a killed run keeps them)."""
    photos = photos or PhotoSet(size=model.input_size)
    names = list(dict.fromkeys(model.resolve_layer(layer) for layer in layers))
    n = photos.count(model.in_channels)
    keyed = [(_gram_key(model, name, photos), GramWork((name,), photos, batch, max_bytes)) for name in names]
    grams, seen = {}, [0] * len(names)
    total = sum(n * len(_sweeps(model, [name], n, photos.size, max_bytes)) for name in names)
    if done:
        done(0, total)
    for index, event in drive_cached(keyed, store, model_source or ModelSource(model.name), model=model, ray=ray,
                                     shape=GRAM_DOC, valid=lambda d: d["n"] == n and len(d["grams"]) == 1):
        full = n * len(_sweeps(model, [names[index]], n, photos.size, max_bytes))
        step = event.done if isinstance(event, Step) else full  # a stored or Ray-run layer counts at once
        if done and step > seen[index]:
            done(step - seen[index], 0)
        seen[index] = max(seen[index], step)
        if isinstance(event, Finished):
            grams[names[index]] = np.asarray(event.result["grams"][0], dtype=np.float64)
    return {model.resolve_layer(layer): grams[model.resolve_layer(layer)] for layer in layers}


def cka_doc(model: LoadedModel, layers: Sequence[str], photos: PhotoSet | None = None,
            model2: LoadedModel | None = None, layers2: Sequence[str] | None = None, batch: int = 16,
            store: Store | None = None, max_bytes: int = MAX_FEATURE_BYTES, done: Progress | None = None,
            ray: str | bool | None = None, sources: Sequence[ModelSource] | None = None) -> dict:
    """{"cka": [[...]], "cka_ci": [[[lo, hi], ...], ...], "n": images, "photos": photos}: cka[i][j] is the
    debiased linear CKA between `layers[i]` of `model` and `layers2[j]` of `model2` (default: the same
    model and layers) over the same photos (default: the natural photos and their crops at the first
    model's input size), with its 95% interval over half-samples of the photos (cka.cka_interval). A
    batch job through the driver (`ray`; `sources`: the models' recipes for Ray workers), cached in the
    store, as are the Grams it is made of."""
    model2 = model2 or model
    photos = photos or PhotoSet(size=model.input_size)
    names = [model.resolve_layer(layer) for layer in layers]
    names2 = [model2.resolve_layer(layer) for layer in (layers2 or layers)]
    check_photos(photos.photos(), 1 + photos.crops)  # before any forward pass
    parts = similarity_key(model, names, model2, names2, photos)
    doc = lookup_json(store, parts, {"cka": [[float]], "cka_ci": [[[float]]], "n": int, "photos": int},
                      valid=lambda d: len(d["cka"]) == len(names) and all(len(r) == len(names2) for r in d["cka"]))
    if doc is not None:
        return doc
    first, second = (list(sources) + [None, None])[:2] if sources else (None, None)
    if model2 is model:
        grams = grams2 = layer_grams(model, names + names2, photos, store, batch, max_bytes, done, ray, first)
    else:
        grams = layer_grams(model, names, photos, store, batch, max_bytes, done, ray, first)
        grams2 = layer_grams(model2, names2, photos, store, batch, max_bytes, done, ray, second)
    a, b = [grams[n] for n in names], [grams2[n] for n in names2]
    doc = {"cka": cka_matrix_of(a, b).tolist(), "cka_ci": cka_interval(a, b, photos.groups()).tolist(),
           "n": photos.count(model.in_channels), "photos": photos.photos()}
    keep(store, doc, json_key(parts))
    return doc


def cka_matrix(model: LoadedModel, layers: Sequence[str], photos: PhotoSet | None = None,
               model2: LoadedModel | None = None, layers2: Sequence[str] | None = None, **options) -> list[list[float]]:
    """cka_doc's matrix alone: cka[i][j] between `layers[i]` and `layers2[j]` (options as cka_doc's)."""
    return cka_doc(model, layers, photos, model2, layers2, **options)["cka"]
