"""A model's layers as every entry point checks them: `LayerInfo`, the layer and channel checks, and
the canonical targets and render specs built from them. Plain values (no torch), so that the
dashboard serves a cached view from a model's card without loading the model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import FeatvizError, unknown_choice
from .settings import RenderSettings, RenderSpec
from .targets import LOGITS, Target


@dataclass(frozen=True)
class LayerInfo:
    name: str
    channels: int
    height: int  # output size at the model's natural input size (1 for logits)
    width: int
    alias: str = ""
    tokens: bool = False  # a transformer's patch tokens laid on their grid (height x width tokens)


class LayerCard:
    """What reads only a model's `name`, `layers` and `aliases`: the loaded model and the dashboard's
    card of it share these, so their messages are the same."""

    name: str
    layers: dict[str, LayerInfo]
    aliases: dict[str, str]

    def resolve_layer(self, name: str) -> str:
        """A listed layer name or alias -> the module name; unknown names list the valid ones."""
        name = self.aliases.get(name, name)
        if name in self.layers:
            return name
        listed = [(f"{i.name} ({i.alias})" if i.alias else i.name) for i in self.layers.values()]
        raise unknown_choice("layer", name, list(self.layers) + list(self.aliases), listed, limit=200,
                             where=f" in {self.name}")

    def check_channel(self, layer: str, channel: int) -> None:
        count = self.layers[self.resolve_layer(layer)].channels
        if not 0 <= channel < count:
            raise FeatvizError(f"Channel {channel} is out of range: layer {layer!r} has {count} channels "
                               f"(0-{count - 1}).")


def stage_layers(layers: Iterable[str]) -> list[str]:
    """Listed layers but logits, leaving out a sub-block where its stage is listed too (lite0: bn1,
    blocks.0 ... blocks.6, bn2; blocks.1.0 is a sub-block of blocks.1): the default layers of the
    similarity matrix and the scale the dashboard picks and pairs layers on."""
    names = [n for n in layers if n != LOGITS]
    return [n for n in names if not any(n.startswith(other + ".") for other in names)]


def resolve_targets(model: LayerCard, layer_channels: Sequence[tuple[str, int]]) -> list[Target]:
    """Check layer names (aliases allowed) and channel ranges; return canonical targets."""
    targets = []
    for layer, channel in layer_channels:
        name = model.resolve_layer(layer)
        model.check_channel(name, int(channel))
        targets.append(Target(name, int(channel)))
    return targets


def spec_for(model, target: Target, settings: RenderSettings) -> RenderSpec:
    """The spec (and so the cache key) of `target` rendered by `model` (anything with a name and a weights digest)."""
    return RenderSpec(model.name, model.digest, target.layer, target.channel, settings)
