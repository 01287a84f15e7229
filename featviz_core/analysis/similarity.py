"""Layer-by-layer similarity: linear CKA (Kornblith et al. 2019, "Similarity of Neural Network
Representations Revisited") between the layers of one model, or of two, over a set of photos.

CKA needs only each layer's Gram matrix over the examples (grams.py: in memory-bounded sweeps of the
forward pass).

    cka = cka_matrix(model, ["blocks.1", "blocks.4", "blocks.5"])  # [[1.0, 0.4, ...], ...]
    doc = cka_doc(model, layers)  # {"cka", "cka_ci": [[[lo, hi], ...], ...], "n", "photos"}

The estimator (debiased HSIC) and its interval are in cka.py. The Grams are a batch job: one GramWork
keyed per layer through the driver's drive_cached (jobs/driver.py), in this process (with progress) or
on Ray (`ray=`); its layers share forward sweeps and each layer's Gram is stored the moment its last
sweep is read, so a killed run keeps every finished layer.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..backends.work import Finished, ModelSource, Step
from ..jobs.driver import drive_cached, keep
from ..models.loading import LoadedModel
from ..store.disk import Store
from ..store.lookup import json_key, lookup_json
from .cka import CKA_VERSION, check_photos, cka_interval, cka_matrix_of, similarity_key
from .grams import MAX_FEATURE_BYTES, Progress, layer_parts, sweeps
from .photoset import PhotoSet

GRAM_DOC = {"layers": [str], "n": int, "grams": [[[float]]]}


@dataclass(frozen=True)
class GramWork:
    """One model's Grams of `layers` over `photos`, as a work item for the backends (backends/work.py)
    that finishes in parts, a layer's part once its last sweep is read: {layer: {"layers": [layer], "n":
    n, "grams": [n x n nested lists]}}. The layers share each forward sweep, so a stage matrix costs a
    pass or two over the photos, not one per layer."""

    layers: tuple[str, ...]
    photos: PhotoSet = PhotoSet()
    batch: int = 16
    max_bytes: int = MAX_FEATURE_BYTES

    @property
    def units(self) -> int:
        return self.photos.count()

    def only(self, layers: Sequence[str]) -> "GramWork":
        """The item for some of its layers (the others are stored already)."""
        return replace(self, layers=tuple(layers))

    def _parts(self, model: LoadedModel):
        n = self.photos.count(model.in_channels)
        return n, layer_parts(model, self.layers, lambda: self.photos.batches(model.in_channels, self.batch), n,
                              self.photos.size, self.max_bytes)

    def run(self, model: LoadedModel) -> dict:
        n, parts = self._parts(model)
        return {layer: _doc(n, layer, g) for _, complete in parts for layer, g in complete.items()}

    def stream(self, model: LoadedModel):
        """In this process: a Step per batch (`done`: images read, over every sweep), and a Finished
        with each sweep's completed layers."""
        (n, parts), done = self._parts(model), 0
        for read, complete in parts:
            done += read
            if complete:
                yield Finished({layer: _doc(n, layer, g) for layer, g in complete.items()})
            elif read:
                yield Step(done)


def _doc(n: int, layer: str, gram_matrix: np.ndarray) -> dict:
    return {"layers": [layer], "n": n, "grams": [gram_matrix.tolist()]}


def _gram_key(model: LoadedModel, layer: str, photos: PhotoSet) -> str:
    return json_key(("gram", CKA_VERSION, model.digest, layer, photos.identity(model.in_channels)))


def layer_grams(model: LoadedModel, layers: Sequence[str], photos: PhotoSet | None = None, store: Store | None = None,
                batch: int = 16, max_bytes: int = MAX_FEATURE_BYTES, done: Progress | None = None,
                ray: str | bool | None = None, model_source: ModelSource | None = None) -> dict[str, np.ndarray]:
    """{layer: Gram} over `photos` (default: the natural photos at the model's size): one GramWork
    keyed per layer through drive_cached, so the store's layers are read back, the rest share forward
    sweeps in this process or on Ray actors loading `model_source`, and each layer is stored the moment
    its last sweep is read (a killed run keeps them)."""
    photos = photos or PhotoSet(size=model.input_size)
    names = list(dict.fromkeys(model.resolve_layer(layer) for layer in layers))
    n = photos.count(model.in_channels)
    work = GramWork(tuple(names), photos, batch, max_bytes)
    keyed = [({name: _gram_key(model, name, photos) for name in names}, work)]

    def cost(missing: list[str]) -> int:  # images read by the sweeps of the layers still missing
        return n * len(sweeps(model, missing, n, photos.size, max_bytes))

    grams, total = {}, cost(names)
    base = credited = 0
    if done:
        done(0, total)
    for _, event in drive_cached(keyed, store, model_source or ModelSource(model.name), model=model, ray=ray,
                                 shape=GRAM_DOC, valid=lambda d: d["n"] == n and len(d["grams"]) == 1):
        if isinstance(event, Finished):
            grams.update({layer: np.asarray(doc["grams"][0], dtype=np.float64) for layer, doc in event.result.items()})
            base = total - cost([name for name in names if name not in grams]) if event.cached else base
            reach = base if event.cached else (total if len(grams) == len(names) else credited)
        else:
            reach = base + event.done
        if done and reach > credited:
            done(reach - credited, 0)
        credited = max(credited, reach)
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
