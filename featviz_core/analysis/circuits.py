"""The circuit of a channel: which channels of an earlier layer drive it, and which channels of the next
layer it drives, measured on natural photos (and any pictures a caller adds).

For channel c of layer L and an earlier layer K (default: the listed layer just before L), each channel
k of K gets attribution = mean over the images of sum over positions of d(act_c)/d(a_k) * a_k, with
act_c the mean of c's map (gradient x activation, as in attribution-based circuit studies): positive
channels excite c, negative ones inhibit it. "Feeds into" is the same attribution the other way: the
channels of the next layer M that c of L drives most. Where K feeds L through one convolution and
nothing else (found by following the tensors of a forward pass), each input also gets the L2 norm of
that convolution's kernel from k to c ("weight"); elsewhere (a block in between: activations, residual
sums) there is no one kernel and "weights" is null.

    doc = circuit(model, "blocks.5", 17, store=store)   # doc["exciting"][0] == {"channel": ..., ...}

A circuit is a batch job: the store's copy by key, else one CircuitWork through the driver
(jobs/driver.py: drive_cached), in this process or on Ray (`ray=`), which stores it under its key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..backends.work import Finished, ModelSource
from ..errors import FeatvizError
from ..jobs.driver import drive_cached
from ..models.hooks import LOGITS
from ..models.loading import LoadedModel
from ..spec.layers import ModelCard
from ..store.disk import Store
from ..store.lookup import json_key
from .circuit_grads import direct_conv, input_attribution, input_weight_norms, output_attribution
from .photoset import PhotoSet, extra_images, pictures_digest

CIRCUIT_VERSION = 1  # bump when the same request would measure other numbers
DEFAULT_TOP = 8
ENTRY_SHAPE = {"channel": int, "attribution": float}
CIRCUIT_SHAPE = {"layer": str, "channel": int, "from": str, "activation": float, "inputs": [ENTRY_SHAPE],
                 "feeds_into": [ENTRY_SHAPE]}


def previous_layer(model: LoadedModel, layer: str) -> str:
    """The listed layer just before `layer` (any module; logits never count)."""
    layer = model.resolve_layer(layer)
    names = [n for n in model.layers if n != LOGITS]
    before = [n for n in names if model.depth(n) < model.depth(layer)]
    if not before:
        raise FeatvizError(f"{layer!r} is at or before the first listed layer of {model.name}: no earlier layer "
                           f"feeds it. Choose a later layer: {', '.join(names[1:6])}, ...")
    return before[-1]


def next_layer(model: LoadedModel, layer: str) -> str | None:
    """The listed layer just after `layer` (any module; logits included), or None after the last."""
    depth = model.depth(model.resolve_layer(layer))
    return next((n for n in model.layers if model.depth(n) > depth), None)


def _check_order(model: LoadedModel, earlier: str, later: str, what: str) -> None:
    if earlier == LOGITS or model.depth(earlier) >= model.depth(later):
        before = [n for n in model.layers if n != LOGITS and model.depth(n) < model.depth(later)]
        raise FeatvizError(f"{what} must be a layer before {later!r}, got {earlier!r}. Valid listed layers: "
                           f"{', '.join(before[-12:]) or 'none'}.")


def _entries(values: np.ndarray, weights: np.ndarray | None = None) -> list[dict]:
    """Every channel, strongest |attribution| first (ties by index)."""
    order = sorted(range(len(values)), key=lambda k: (-abs(float(values[k])), k))
    out = []
    for k in order:
        v = float(values[k])
        entry = {"channel": k, "attribution": v, "sign": "+" if v > 0 else "-" if v < 0 else "0"}
        if weights is not None:
            entry["weight"] = float(weights[k])
        out.append(entry)
    return out


def top_lists(entries: Sequence[dict], top: int = DEFAULT_TOP) -> tuple[list[dict], list[dict]]:
    """(the `top` most exciting, the `top` most inhibiting) of attribution-sorted entries."""
    ranked = sorted(entries, key=lambda e: -e["attribution"])
    return [e for e in ranked if e["attribution"] > 0][:top], [e for e in ranked[::-1] if e["attribution"] < 0][:top]


@dataclass(frozen=True, eq=False)
class CircuitWork:
    """One channel's circuit as a work item for the backends (backends/work.py): `run` returns the
    plain dict `circuit` caches (every channel sorted; no top lists). Layers are resolved names."""

    layer: str
    channel: int
    source: str
    into: str | None = None  # None: no "feeds into"
    photos: PhotoSet = PhotoSet()
    extra: tuple[np.ndarray, ...] = ()
    batch: int = 16

    @property
    def units(self) -> int:
        return self.photos.count() + len(self.extra)

    def images(self, model: LoadedModel) -> torch.Tensor:
        own = self.photos.images(model.in_channels)
        return torch.cat([own, extra_images(self.extra, self.photos.size, model.in_channels)])

    def run(self, model: LoadedModel) -> dict:
        images = self.images(model)
        attribution, acts = input_attribution(model, self.layer, self.channel, self.source, images, self.batch)
        conv = direct_conv(model, self.source, self.layer, images[:1])
        weights = input_weight_norms(conv[1], self.channel) if conv else None
        feeds = (output_attribution(model, self.layer, self.channel, self.into, images, self.batch)
                 if self.into else None)
        return {"layer": self.layer, "channel": self.channel, "from": self.source, "into": self.into,
                "images": len(images), "photos": self.photos.identity(model.in_channels), "extra": len(self.extra),
                "activation": float(acts.mean()), "weights": conv[0] if conv else None,
                "inputs": _entries(attribution, weights), "feeds_into": [] if feeds is None else _entries(feeds)}


def circuit_key(model: ModelCard | LoadedModel, work: CircuitWork) -> tuple:
    """The store key of a circuit: version, weights digest, layers, channel and the images it was measured on.
    `model`: the loaded model or its card (spec.ModelCard), which holds all the key reads."""
    return ("circuit", CIRCUIT_VERSION, model.digest, work.layer, work.channel, work.source, work.into or "-",
            work.photos.identity(model.in_channels), pictures_digest(work.extra))


def circuit_work(model: LoadedModel, layer: str, channel: int, source: str | None = None, into: str | None = None,
                 feeds: bool = True, extra: Sequence[np.ndarray] | None = None, photos: PhotoSet | None = None,
                 batch: int = 16) -> CircuitWork:
    """The checked work item of a circuit (bad layers and channels raise FeatvizError naming valid ones)."""
    layer = model.resolve_layer(layer)
    model.check_channel(layer, int(channel))
    source = model.resolve_layer(source) if source else previous_layer(model, layer)
    _check_order(model, source, layer, "The layer it is fed from (--from)")
    if feeds:
        into = model.resolve_layer(into) if into else next_layer(model, layer)
        if into:
            _check_order(model, layer, into, f"A layer {layer!r} feeds into must come after it; {into!r}")
    extra = tuple(np.ascontiguousarray(np.asarray(p)) for p in (extra or ()))
    extra_images(extra, 8)  # bad pictures are said now, not on a worker
    return CircuitWork(layer, int(channel), source, into if feeds else None,
                       photos or PhotoSet(size=model.input_size), extra, batch)


def measured(model: LoadedModel, work: CircuitWork, store: Store | None = None, ray: str | bool | None = None,
             model_source: ModelSource | None = None) -> dict:
    """The circuit `work` measures (every channel sorted, no top lists): the store's, else run through the
    driver (in this process, or on Ray actors loading `model_source`), which keeps it under its key."""
    doc, keyed = None, [(json_key(circuit_key(model, work)), work)]
    for _, event in drive_cached(keyed, store, model_source or ModelSource(model.name), model=model, ray=ray,
                                 shape=CIRCUIT_SHAPE, valid=lambda d: _measures(model, work, d)):
        if isinstance(event, Finished):
            doc = event.result
    return doc


def _measures(model: LoadedModel, work: CircuitWork, doc: dict) -> bool:
    """A stored circuit of this request: an entry for every channel of the layers it was measured between."""
    feeds = model.info(work.into).channels if work.into else 0
    return len(doc["inputs"]) == model.info(work.source).channels and len(doc["feeds_into"]) == feeds


def circuit(model: LoadedModel, layer: str, channel: int, source: str | None = None, into: str | None = None,
            feeds: bool = True, extra: Sequence[np.ndarray] | None = None, photos: PhotoSet | None = None,
            store: Store | None = None, batch: int = 16, top: int = DEFAULT_TOP, ray: str | bool | None = None,
            model_source: ModelSource | None = None) -> dict:
    """The circuit of `channel` of `layer`: {"layer", "channel", "from", "into", "activation", "inputs":
    [{"channel", "attribution", "sign"[, "weight"]}, ...] strongest first, "exciting", "inhibiting"
    (the `top` of each), "feeds_into" (the next layer's channels, strongest first), "feeds_exciting",
    "feeds_inhibiting", "weights" (the one convolution's name, or None), "images", "photos"}.
    `source` defaults to the previous listed layer, `into` to the next (`feeds=False`: skip it);
    `extra`: more pictures (HxWx3 uint8) beside the natural photos. A batch job through the driver
    (`ray`, `model_source`: see `measured`), cached in the store."""
    work = circuit_work(model, layer, channel, source, into, feeds, extra, photos, batch)
    doc = dict(measured(model, work, store, ray, model_source))
    doc["exciting"], doc["inhibiting"] = top_lists(doc["inputs"], top)
    doc["feeds_exciting"], doc["feeds_inhibiting"] = top_lists(doc["feeds_into"], top)
    return doc
