"""What the Concepts page shows of a layer, kept in the store beside the core's own cache, so a shared
link whose concepts were learned once opens without torch (tests/test_app_cold.py): the core's
concepts document is keyed by a photo set, whose key needs torch to build, and its exemplars,
heatmaps and matches are not kept at all.

Each fact here is a plain JSON value under a "ui:concepts..." key that names the model's weights,
the layer and the request (k, seed and the photos: PHOTO_PX, CROPS and POSITIONS): a layer's concepts (the
document without its fitted dictionary, with EXEMPLARS photo crops per concept as JPEG), its R²
against k, a concept's heatmaps, and the matches of two layers' concepts. Computing one learns (or
reads back) the core's document, which the core keeps in the store itself.
"""
from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image

from featviz_core.store import cached_json, lookup_json

from .models import ModelRef

if TYPE_CHECKING:
    from featviz_core import Store

VERSION = 1
PHOTO_PX, CROPS = 160, 2  # 14 natural photos, each whole and as 2 random crops: 42 photos, seconds to learn on
EXEMPLARS = 3  # photo crops per concept tile
HEATMAPS = 3  # photos a concept's heatmap is shown over (its best exemplars)
POSITIONS = 6000  # activations learned on: a layer's 32 concepts (sparse autoencoder) in a minute on a CPU core,
# 20,000 (the core's default) take three; R² at k = 32 on Lite0's blocks.1 is 0.88 with 6,000, 0.90 with 20,000
KS = (1, 2, 4, 8, 16)  # the R²-against-k chart
METHOD = "auto"  # the core picks NMF or a sparse autoencoder by the layer's sign
JPEG_QUALITY = 88
Progress = Callable[[int, int], None]

SUMMARY_SHAPE = {"digest": str, "layer": str, "method": str, "k": int, "seed": int, "r2": float, "photos": int,
                 "concepts": [{"concept": int, "importance": float, "direction": [float],
                               "channels": [{"channel": int, "weight": float}]}],
                 "exemplars": [[{"photo": int, "code": float, "jpeg": str}]]}


def photo_set():
    """The photos every concept of the page is learned on and found in."""
    from featviz_core.analysis import PhotoSet

    return PhotoSet(size=PHOTO_PX, crops=CROPS)


def _parts(kind: str, ref: ModelRef, layer: str, *request) -> tuple:
    return ("ui", "concepts", kind, VERSION, ref.name, ref.digest, layer, METHOD, PHOTO_PX, CROPS, POSITIONS,
            *request)


def jpeg(array: np.ndarray) -> str:
    """An HxWxC uint8 picture as base64 JPEG (what the page draws, as a data URL)."""
    out = io.BytesIO()
    image = Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).convert("RGB")
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return base64.b64encode(out.getvalue()).decode("ascii")


def data_url(b64: str) -> str:
    return "data:image/jpeg;base64," + b64


def core_doc(ref: ModelRef, layer: str, k: int, seed: int, store: Store, done: Progress | None = None) -> dict:
    """The core's concepts document (its own cache first): the model is loaded."""
    from featviz_core.analysis import learn_concepts

    return learn_concepts(ref.load(), layer, k, METHOD, seed, photo_set(), store, done=done, max_positions=POSITIONS)


def stored_summary(ref: ModelRef, layer: str, k: int, seed: int, store: Store) -> dict | None:
    return lookup_json(store, _parts("layer", ref, layer, k, seed), SUMMARY_SHAPE, valid=_complete(k))


def _complete(k: int) -> Callable[[dict], bool]:
    return lambda d: len(d["concepts"]) == k == len(d["exemplars"])


def summary(ref: ModelRef, layer: str, k: int, seed: int, store: Store, done: Progress | None = None,
            found: Callable[[], None] | None = None) -> dict:
    """A layer's concepts as the page shows them: learned (`done` reports photos read), then the photo
    crops where each peaks (`found` is called before that pass). Raises FeatvizError."""
    def compute() -> dict:
        from featviz_core.analysis import concept_exemplars

        doc = core_doc(ref, layer, k, seed, store, done)
        if found:
            found()
        crops = concept_exemplars(ref.load(), doc, photo_set(), EXEMPLARS, store)
        return {**{key: doc[key] for key in ("model", "digest", "layer", "method", "k", "seed", "r2", "positions")},
                "photos": doc["photos"]["count"], "concepts": doc["concepts"],
                "exemplars": [[{"photo": e.photo, "code": e.code, "jpeg": jpeg(e.crop)} for e in row] for row in crops]}

    return cached_json(store, _parts("layer", ref, layer, k, seed), compute, SUMMARY_SHAPE, valid=_complete(k))


def r2_curve(ref: ModelRef, layer: str, seed: int, store: Store, done: Progress | None = None) -> dict[int, float]:
    """{k: R²} of the layer's concepts at each k of KS (each learning kept by the core too)."""
    def compute() -> list[float]:
        from featviz_core.analysis import r2_curve as measure

        curve = measure(ref.load(), layer, KS, METHOD, seed, photo_set(), store, done=done, max_positions=POSITIONS)
        return [curve[k] for k in KS]

    values = cached_json(store, _parts("r2", ref, layer, seed, list(KS)), compute, [float],
                         valid=lambda v: len(v) == len(KS))
    return dict(zip(KS, values))


def stored_r2(ref: ModelRef, layer: str, seed: int, store: Store) -> dict[int, float] | None:
    values = lookup_json(store, _parts("r2", ref, layer, seed, list(KS)), [float], valid=lambda v: len(v) == len(KS))
    return None if values is None else dict(zip(KS, values))


def spotlight(photo: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The photo lit where the concept lives (heat 1) and dimmed where it does not (heat 0)."""
    light = 0.2 + 0.8 * heat[..., None]
    return (photo.astype(np.float32) * light).round().clip(0, 255).astype(np.uint8)


def heatmaps(ref: ModelRef, layer_doc: dict, concept: int, store: Store) -> list[dict]:
    """[{"photo", "jpeg"}]: the concept's heatmap over its best HEATMAPS exemplar photos, as spotlights."""
    def compute() -> list[dict]:
        from featviz_core.analysis import concept_heatmap, photo_at

        model = ref.load()
        doc = core_doc(ref, layer_doc["layer"], layer_doc["k"], layer_doc["seed"], store)
        out = []
        for entry in layer_doc["exemplars"][concept][:HEATMAPS]:
            photo = photo_at(photo_set(), model, entry["photo"])
            out.append({"photo": entry["photo"], "jpeg": jpeg(spotlight(photo, concept_heatmap(model, doc, concept,
                                                                                                   photo)))})
        return out

    parts = _parts("heat", ref, layer_doc["layer"], layer_doc["k"], layer_doc["seed"], concept)
    return cached_json(store, parts, compute, [{"photo": int, "jpeg": str}])


MATCH_SHAPE = {"pairs": [{"concept": int, "concept2": int, "score": float}], "unmatched": [int],
               "unmatched2": [int], "threshold": float, "samples": int}


def matches(ref: ModelRef, doc: dict, ref2: ModelRef, doc2: dict, store: Store) -> dict:
    """The core's one-to-one matching of two layers' concepts (of one model or two) on the page's photos."""
    def compute() -> dict:
        from featviz_core.analysis import match_concepts

        full = core_doc(ref, doc["layer"], doc["k"], doc["seed"], store)
        full2 = core_doc(ref2, doc2["layer"], doc2["k"], doc2["seed"], store)
        found = match_concepts(ref.load(), full, ref2.load(), full2, photo_set())
        return {key: found[key] for key in MATCH_SHAPE}

    parts = (*_parts("match", ref, doc["layer"], doc["k"], doc["seed"]), ref2.name, ref2.digest, doc2["layer"],
             doc2["k"], doc2["seed"])
    return cached_json(store, parts, compute, MATCH_SHAPE)


def partner(found: dict, concept: int) -> tuple[int, float] | None:
    """The concept of the second layer that `concept` (of the first) is matched with, and its score."""
    return next(((p["concept2"], p["score"]) for p in found["pairs"] if p["concept"] == concept), None)
