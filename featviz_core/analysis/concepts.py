"""A layer as the concepts it holds: dictionary learning over its activations at every position of
a photo set (Olah et al. 2018, "The Building Blocks of Interpretability"; Fel et al. 2023, CRAFT;
Gao et al. 2024, TopK sparse autoencoders). The methods and why: concepts_learn.py.

The public names, for the command line and the pages (stable):

    doc = learn_concepts(model, "blocks.5", k=12, method="auto", seed=0, photos=None, store=None,
                         ray=None, done=None)            # the concepts document (below), cached
    events = render_concepts(model, doc, settings, store=None, power=0.0, previews=False)
                                                         # jobs.Progress events, as render_channels gives
    scores = concept_scores(model, doc, pictures, store=None)   # [ConceptScore(concept, z, rank, ...)]
    found = concept_exemplars(model, doc, photos=None, top=6)   # [[Exemplar(photo, row, col, code, box, crop)]]
    heat = concept_heatmap(model, doc, concept, photo)   # (H, W) float32 in [0, 1], the photo's size
    maps = code_maps(model, doc, images)                 # (B, k, h, w) codes of images (B, C, S, S) in [0, 1]
    curve = r2_curve(model, layer, ks=(1, 2, 4, 8, 16, 32), method="auto", seed=0, photos=None, store=None)
    match = match_concepts(model, doc, model2, doc2, photos=None)  # {"pairs", "unmatched", "unmatched2", ...}

The document (plain JSON): {"model", "digest", "layer", "method" (the one used), "requested", "k",
"seed", "clip" (NMF of a signed layer: clipped at 0), "r2", "r2_over", "positions", "photos":
{"identity", "count"}, "concepts": [{"concept", "importance", "direction" (unit, C floats),
"channels": [{"channel", "weight"}]}], "codec": the fitted dictionary (concepts_learn.encode)}.
Concepts are ordered by importance, the first the largest share of the layer's reconstruction.

Learning is a batch job: one `ConceptWork` item through `drive_cached` (jobs/driver.py), in this
process or on Ray, kept in the store under the model's weights digest, layer, method, k, seed, the
photo set's identity and CONCEPTS_VERSION. Positions are subsampled: at most MAX_POSITIONS (20,000)
in all, the same number drawn at random from each photo, so a layer of 192 channels holds 15 MB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..backends.work import Finished, ModelSource, Step
from ..errors import FeatvizError
from ..jobs.driver import drive_cached
from ..models.hooks import LayerTap
from ..models.loading import LoadedModel
from ..spec import check_whole
from ..store.disk import Store
from ..store.lookup import json_key
from . import concepts_learn
from .concepts_photos import Photos, default_photos, photo_batches

CONCEPTS_VERSION = 1  # bump when the same request would give other concepts
MAX_POSITIONS = 20_000
K_RANGE = (1, 256)
METHODS = concepts_learn.METHODS
Progress = Callable[[int, int], None]  # (photos just done, photos added to the total)


def check_layer(model: LoadedModel, layer: str) -> str:
    """The canonical layer name; FeatvizError for a layer without positions (the logits)."""
    name = model.resolve_layer(layer)
    if model.info(name).height <= 1 and model.info(name).width <= 1:
        spatial = [n for n, info in model.layers.items() if info.height > 1][:8]
        raise FeatvizError(f"Layer {name!r} has one position per photo, too few to learn concepts from: choose a "
                           f"layer with a spatial map, e.g. {', '.join(spatial)}.")
    return name


def is_clamp(model: LoadedModel, layer: str) -> bool:
    """A capped clamp (ReLU6) read before its clamp, as LayerTap reads it."""
    return isinstance(dict(model.module.named_modules()).get(layer), nn.Hardtanh)


@torch.no_grad()
def _activations(model: LoadedModel, layer: str, photos: Photos, seed: int,
                 max_positions: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(photos in the batch, (n, C) activations at positions drawn per photo) per batch of photos."""
    gen = torch.Generator().manual_seed(seed)
    per_photo = max(1, math.ceil(max_positions / photos.count(model.in_channels)))
    with LayerTap(model.module, [layer]) as tap:
        for index, images in photo_batches(photos, model):
            act = tap.run(model.normalize(images.to(model.device)))[layer].float().cpu()
            flat = act.flatten(2).transpose(1, 2)  # (b, positions, C)
            keep = [torch.randperm(flat.shape[1], generator=gen)[:per_photo] for _ in index]
            yield len(index), torch.cat([flat[b, rows] for b, rows in enumerate(keep)])


@dataclass(frozen=True)
class ConceptWork:
    """Work item: k concepts of `layer` learned over `photos`; `run` returns the concepts document."""

    layer: str
    k: int
    method: str
    seed: int
    photos: Photos
    max_positions: int = MAX_POSITIONS

    @property
    def units(self) -> int:
        return self.photos.count()

    def run(self, model: LoadedModel) -> dict:
        return [e.result for e in self.stream(model) if isinstance(e, Finished)][0]

    def stream(self, model: LoadedModel) -> Iterator[Step | Finished]:
        parts, done = [], 0
        for n, part in _activations(model, self.layer, self.photos, self.seed, self.max_positions):
            parts.append(part)
            done += n
            yield Step(done)
        if not parts:
            raise FeatvizError("None of the photos could be read: no activations to learn concepts from.")
        yield Finished(self._doc(model, torch.cat(parts)[:self.max_positions], done))

    def _doc(self, model: LoadedModel, x: torch.Tensor, photos: int) -> dict:
        clamp = is_clamp(model, self.layer)
        method = concepts_learn.pick_method(self.method, x, clamp)
        codec, concepts = concepts_learn.describe(concepts_learn.fit(method, x, self.k, self.seed), x)
        return {"model": model.name, "digest": model.digest, "layer": self.layer, "method": method,
                "requested": self.method, "k": self.k, "seed": self.seed,
                "clip": method == "nmf" and bool((x < 0).any()), "r2": concepts_learn.r2_score(codec, x),
                "r2_over": f"the {len(x)} positions the concepts were fitted on",
                "positions": len(x), "photos": {"identity": self.photos.identity(model.in_channels), "count": photos},
                "concepts": concepts, "codec": codec}


def concepts_key(model: LoadedModel, work: ConceptWork) -> str:
    return json_key(("concepts", CONCEPTS_VERSION, model.digest, work.layer, work.method, work.k, work.seed,
                     work.photos.identity(model.in_channels), work.max_positions))


def check_request(model: LoadedModel, layer: str, k: int, method: str, seed: int) -> str:
    check_whole("concept count k", k, K_RANGE)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise FeatvizError(f"Seed {seed!r} must be a whole number >= 0.")
    concepts_learn.check_method(method)
    return check_layer(model, layer)


def learn_concepts(model: LoadedModel, layer: str, k: int = 12, method: str = "auto", seed: int = 0,
                   photos: Photos | None = None, store: Store | None = None, ray: str | bool | None = None,
                   done: Progress | None = None, source: ModelSource | None = None,
                   max_positions: int = MAX_POSITIONS) -> dict:
    """The concepts document of `layer` (see the module's docstring), from the store when it holds it."""
    name = check_request(model, layer, k, method, seed)
    work = ConceptWork(name, k, method, seed, default_photos(model, photos), max_positions)
    if done:
        done(0, work.units)
    seen, doc = 0, None
    for _, event in drive_cached([(concepts_key(model, work), work)], store, source or ModelSource(model.name),
                                 model=model, ray=ray, shape={"concepts": [{"direction": [float]}], "codec": {}},
                                 valid=lambda d: d.get("k") == k):
        if isinstance(event, Step) and done:
            done(event.done - seen, 0)
            seen = event.done
        elif isinstance(event, Finished):
            doc = event.result
    if done and seen < work.units:
        done(work.units - seen, 0)  # served from the store, or a Ray worker that reports once
    return doc


def check_doc(model: LoadedModel, doc: dict) -> None:
    """The concepts must be the model's own: directions of other weights mean nothing here."""
    if doc.get("digest") != model.digest or doc.get("layer") not in model.choices():
        raise FeatvizError(f"These concepts were learned on other weights or another layer than {model.name!r}'s "
                           f"{doc.get('layer')!r}: learn them again with this model.")


def directions(doc: dict) -> torch.Tensor:
    """(k, C) unit directions of a concepts document."""
    return torch.tensor([c["direction"] for c in doc["concepts"]], dtype=torch.float32)


@torch.no_grad()
def code_maps(model: LoadedModel, doc: dict, images: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """(B, k, h, w) codes of each concept at each position of `images` ((B, C, S, S) in [0, 1])."""
    out = []
    with LayerTap(model.module, [doc["layer"]]) as tap:
        for part in images.split(batch):
            act = tap.run(model.normalize(part.to(model.device)))[doc["layer"]].float().cpu()
            b, c, h, w = act.shape
            codes = concepts_learn.encode(doc["codec"], act.permute(0, 2, 3, 1).reshape(-1, c))
            out.append(codes.reshape(b, h, w, -1).permute(0, 3, 1, 2))
    return torch.cat(out)


def r2_curve(model: LoadedModel, layer: str, ks=(1, 2, 4, 8, 16, 32), method: str = "auto", seed: int = 0,
             photos: Photos | None = None, store: Store | None = None,
             done: Progress | None = None, max_positions: int = MAX_POSITIONS) -> dict[int, float]:
    """{k: R^2} of the layer's concepts at each k (each learning cached as learn_concepts caches it)."""
    return {int(k): learn_concepts(model, layer, int(k), method, seed, photos, store, done=done,
                                   max_positions=max_positions)["r2"] for k in ks}


def concept_heatmap(model: LoadedModel, doc: dict, concept: int, photo: np.ndarray) -> np.ndarray:
    """Where `concept` lives in `photo` (HxWxC uint8): its code at each position, upsampled bilinearly to
    the photo's size, divided by its maximum (all zeros where the concept is absent)."""
    check_whole("concept", concept, (0, len(doc["concepts"]) - 1))
    image = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1).float().unsqueeze(0) / 255
    codes = code_maps(model, doc, image)[:, concept:concept + 1]
    heat = torch.nn.functional.interpolate(codes, size=photo.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    top = float(heat.max())
    return (heat / top if top > 0 else heat.clamp(min=0)).clamp(0, 1).numpy().astype(np.float32)
