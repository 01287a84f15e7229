"""Cache-aware batch rendering: many channels in few batched optimizations.

`render_channels` validates the request and hands it to the driver (driver.py): what the store
already has comes first, the rest renders in batches that fit the device's memory, and every
finished batch is stored at once (so a layer interrupted half-way keeps its finished channels).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ..models.loading import LoadedModel
from ..optvis.render import check_photo
from ..spec.layers import resolve_targets, spec_for
from ..spec.settings import RenderSettings
from ..spec.targets import Target, check_objective_layers
from ..store.disk import ChannelResult, Store
from .driver import Progress, drive_pictures
from .pictures import RenderBatch

__all__ = ["Progress", "collect", "render_channels", "resolve_targets", "spec_for"]


def render_channels(model: LoadedModel, layer_channels: Sequence[tuple[str, int]], settings: RenderSettings,
                    store: Store | None = None, batch_size: int | None = None, previews: bool = False,
                    photo: np.ndarray | None = None) -> Iterator[Progress]:
    """Render every (layer, channel) with `settings`, in batches, through the store.

    Yields Progress events; every result appears exactly once in some event's `finished` list,
    cached ones first. Results are stored as each batch finishes. `photo` (HxWx3 uint8) is the
    starting picture of `init="photo"` settings."""
    targets = resolve_targets(model, layer_channels)
    check_objective_layers(settings.objective, [t.layer for t in targets])
    check_photo(settings, photo)
    keys = [spec_for(model, t, settings).key() for t in targets]

    def batch(chunk: list[Target]) -> RenderBatch:
        return RenderBatch(tuple((t.layer, t.channel) for t in chunk), settings, photo)

    yield from drive_pictures(model, targets, keys, batch, settings.steps, settings.size, store, batch_size, previews)


def collect(events: Iterator[Progress]) -> list[ChannelResult]:
    """Run render_channels (or dream_channels) to the end and return its results in order of completion."""
    return [r for e in events for r in e.finished]
