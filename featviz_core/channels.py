"""Channel pictures as render-service work (service.py): which channels may share a batch, how many,
and rendering a batch through `render_channels` (cache first, each finished batch stored at once)."""
from __future__ import annotations

from typing import Iterator, Sequence

from .models import LoadedModel
from .objectives import Target
from .runner import max_batch, render_channels, spec_for
from .service import Item, Update
from .spec import RenderSettings
from .store import Store


class ChannelBatcher:
    """Channels of one model with one set of settings. On a CPU a batch holds one layer (a shallow
    picture batched with a deep one pays for the deep forward pass); a GPU mixes layers
    (runner.plan_batches' rule)."""

    def __init__(self, model: LoadedModel, settings: RenderSettings, store: Store | None, layer: str | None):
        self.model, self.settings, self.store, self.layer = model, settings, store, layer
        self.key = (model.name, model.digest, str(model.device), settings, layer)

    def limit(self) -> int:
        layers = [self.layer] if self.layer else list(self.model.layers)[-1:]
        return max_batch(self.model, layers, self.settings.size)

    def render(self, items: list[Item]) -> Iterator[Update]:
        by_label = {item.label: item.key for item in items}
        steps = self.settings.steps
        for event in render_channels(self.model, [(t.layer, t.channel) for t in (i.payload for i in items)],
                                     self.settings, self.store, batch_size=len(items), previews=True):
            done = event.done_steps * steps // event.total_steps if event.total_steps else 0
            yield Update(done, {by_label[label]: picture for label, picture in event.preview},
                         {result.key: result for result in event.finished})


def channel_items(model: LoadedModel, targets: Sequence[Target], settings: RenderSettings,
                  store: Store | None) -> list[Item]:
    """One service item per target, keyed by its cache key."""
    split_layers = model.device.type != "cuda"
    batchers: dict[str | None, ChannelBatcher] = {}
    items = []
    for target in targets:
        layer = target.layer if split_layers else None
        batcher = batchers.setdefault(layer, ChannelBatcher(model, settings, store, layer))
        items.append(Item(spec_for(model, target, settings).key(), str(target), settings.steps, batcher, target))
    return items

