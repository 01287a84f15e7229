"""Dreams of one photo as a batch job: the Dream page's and `featviz dream`'s entry point. The loop
itself is `optvis.dream.dream`; batching, the cache and progress are the driver's, as for renders."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ..errors import FeatvizError
from ..inputs.photos import check_digest
from ..models.loading import LoadedModel
from ..optvis.dream_tiles import TILE
from ..spec.dream import WHOLE_LAYER, DreamSettings, check_dream_size, spec_for
from ..spec.targets import LOGITS, Target, check_objective_layers
from ..store.disk import Store
from .driver import Progress, drive_pictures
from .pictures import DreamBatch

# (layer, channel) pairs: no channel for a whole layer, no layer for a logit.
Request = Sequence[tuple[str | None, int | None]]


def dream_targets(model: LoadedModel, layer_channels: Request, kind: str) -> list[Target]:
    """Canonical targets: layer names or aliases checked; a whole layer takes no channel; a logit
    dream's channel is a class of the logits."""
    targets = []
    for layer, channel in layer_channels:
        if kind == "logit":
            model.check_channel(LOGITS, int(channel))
            targets.append(Target(LOGITS, int(channel)))
            continue
        name = model.resolve_layer(layer)
        if name == LOGITS and kind == "layer":
            raise FeatvizError("A whole-layer dream needs a layer, not the logits: dream a class with --logit.")
        if kind == "channel":
            model.check_channel(name, int(channel))
        targets.append(Target(name, int(channel) if kind == "channel" else WHOLE_LAYER))
    check_objective_layers(kind, [t.layer for t in targets])
    return targets


def dream_channels(model: LoadedModel, photo: np.ndarray, photo_digest: str, layer_channels: Request,
                   settings: DreamSettings, store: Store | None = None, batch_size: int | None = None,
                   previews: bool = False, guide: np.ndarray | None = None) -> Iterator[Progress]:
    """Dream every target of one photo, batched and cached like `runner.render_channels` (same
    Progress events, ChannelResults in the same store). `photo_digest` is `photos.photo_digest(photo)`;
    `guide` is the guide photo, `settings.guide` its digest (both or neither). The dream's pixels are
    checked against the host's limit (config.dream_pixels) first; a digest that is not the photo's is refused
    (the cache keys hold it)."""
    targets = dream_targets(model, layer_channels, settings.objective)
    check_digest(photo, photo_digest, "The photo to dream on")
    check_guide(settings, guide)
    check_dream_size(photo.shape, settings.size)
    keys = [spec_for(model, photo_digest, t, settings).key() for t in targets]

    def batch(chunk: list[Target]) -> DreamBatch:
        return DreamBatch(tuple((t.layer, t.channel) for t in chunk), settings, photo, photo_digest, guide=guide)

    side = min(settings.size, TILE)  # a step's memory is one tile's: batches are sized for a tile
    yield from drive_pictures(model, targets, keys, batch, settings.steps, side, store, batch_size, previews)


def check_guide(settings: DreamSettings, guide: np.ndarray | None) -> None:
    """A guide photo comes with its digest in the settings (the cache key), and only so."""
    if (guide is None) != (settings.guide is None):
        raise FeatvizError("A guided dream needs both the guide photo and its digest in DreamSettings(guide=...).")
    if guide is not None:
        check_digest(guide, settings.guide, "The guide photo of DreamSettings(guide=...)")
