"""Pictures as render-service work (serving/service.py): which pictures may share a batch, how many,
and rendering a batch through the driver (cache first, each finished batch stored at once).

A `PictureKind` says how one kind of picture is keyed and rendered: channel renders
(`channel_kind`, through `render_channels`) or the Dream page's dreams (`dream_kind`, through
`dreams.dream_channels`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Iterator, Sequence

from ..models.loading import LoadedModel
from ..serving.queueing import Item, Update
from ..spec import dream as dream_spec
from ..spec.settings import RenderSettings
from ..spec.targets import Target
from ..store.disk import Store
from . import dreams
from .batching import max_batch, mixes_layers
from .driver import Progress
from .runner import render_channels, spec_for


@dataclass(frozen=True)
class PictureKind:
    """Pictures of one model rendered the same way: only pictures of one kind share a batch."""

    group: Hashable  # what else decides the pictures (the settings; a dream's photo and settings)
    steps: int
    size: int
    key: Callable[[Target], str]  # a picture's cache key
    events: Callable[[list[Target], int], Iterator[Progress]]  # (targets, batch size) -> driver Progress events


def channel_kind(model: LoadedModel, settings: RenderSettings, store: Store | None) -> PictureKind:
    """Channel pictures rendered with `settings` (render_channels)."""
    def events(targets: list[Target], batch_size: int) -> Iterator[Progress]:
        return render_channels(model, [(t.layer, t.channel) for t in targets], settings, store,
                               batch_size=batch_size, previews=True)

    return PictureKind(settings, settings.steps, settings.size, lambda t: spec_for(model, t, settings).key(), events)


def dream_kind(model: LoadedModel, photo, photo_digest: str, settings, store: Store | None,
               guide=None) -> PictureKind:
    """Whole-layer, channel or logit dreams of one photo (dreams.dream_channels) with `settings`
    (DreamSettings); `guide`: the guide photo `settings.guide` names."""
    def events(targets: list[Target], batch_size: int) -> Iterator[Progress]:
        request = [(t.layer, t.channel if t.channel >= 0 else None) for t in targets]
        return dreams.dream_channels(model, photo, photo_digest, request, settings, store, batch_size, previews=True,
                                     guide=guide)

    return PictureKind(("dream", photo_digest, settings), settings.steps, settings.size,
                       lambda t: dream_spec.spec_for(model, photo_digest, t, settings).key(), events)


class ChannelBatcher:
    """Pictures of one kind and model, batched by the one rule (batching.py): on a CPU a batch holds
    one layer; a GPU mixes layers, and visitors."""

    def __init__(self, model: LoadedModel, kind: PictureKind, layer: str | None):
        self.model, self.kind, self.layer = model, kind, layer
        self.key = (model.name, model.digest, str(model.device), kind.group, layer)
        self.mixes_visitors = mixes_layers(model.device)  # a fuller batch costs a GPU about the same

    def limit(self) -> int:
        layers = [self.layer] if self.layer else list(self.model.layers)[-1:]
        return max_batch(self.model, layers, self.kind.size)

    def render(self, items: list[Item]) -> Iterator[Update]:
        by_label = {item.label: item.key for item in items}
        steps = self.kind.steps
        for event in self.kind.events([i.payload for i in items], len(items)):
            done = event.done_steps * steps // event.total_steps if event.total_steps else 0
            yield Update(done, {by_label[label]: picture for label, picture in event.preview},
                         {result.key: result for result in event.finished})


def channel_items(model: LoadedModel, targets: Sequence[Target], kind: PictureKind) -> list[Item]:
    """One service item per target, keyed by its cache key."""
    mix = mixes_layers(model.device)
    batchers: dict[str | None, ChannelBatcher] = {}
    items = []
    for target in targets:
        layer = None if mix else target.layer
        batcher = batchers.setdefault(layer, ChannelBatcher(model, kind, layer))
        items.append(Item(kind.key(target), str(target), kind.steps, batcher, target))
    return items
