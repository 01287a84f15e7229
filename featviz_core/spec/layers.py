"""A model's layers as every entry point checks them: `LayerInfo`, the layer and channel checks, and
the canonical targets and render specs built from them. Plain values (no torch), so that the
dashboard serves a cached view from a model's card without loading the model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


ANY_MODULE = ("Any module with a feature-map output is a layer too (e.g. the units inside a block): "
              "`featviz layers --all` lists them.")


class LayerCard:
    """What reads only a model's `name`, `layers`, `modules` and `aliases`: the loaded model and the
    dashboard's card of it share these, so their messages are the same.

    `layers` are the listed ones (the defaults everywhere); `modules` every module with a feature-map
    output (listed ones included), in the order their outputs are complete in a forward pass. Either
    kind is valid wherever a layer is asked for."""

    name: str
    layers: dict[str, LayerInfo]
    modules: dict[str, LayerInfo]
    aliases: dict[str, str]

    def resolve_layer(self, name: str) -> str:
        """A layer name, alias or module name -> the module name; unknown names list the listed ones."""
        name = self.aliases.get(name, name)
        if name in self.layers or name in self.modules:
            return name
        listed = [(f"{i.name} ({i.alias})" if i.alias else i.name) for i in self.layers.values()]
        error = unknown_choice("layer", name, list(self.layers) + list(self.aliases) + list(self.modules), listed,
                               limit=200, where=f" in {self.name}")
        raise FeatvizError(f"{error} {ANY_MODULE}")

    def info(self, name: str) -> LayerInfo:
        """The LayerInfo of a resolved layer name (listed or any module)."""
        return self.layers.get(name) or self.modules[name]

    def depth(self, name: str) -> int:
        """Where a resolved layer's output is complete in a forward pass (logits last): sorts layers
        shallow to deep, and so decides which layers can share a forward pass that stops early."""
        order = self.modules if name in self.modules else self.layers
        return list(order).index(name) if name != LOGITS else len(self.modules) + len(self.layers)

    def choices(self) -> list[str]:
        """Every valid layer name: the listed ones first (the familiar ones), then every other module."""
        return list(self.layers) + [n for n in self.modules if n not in self.layers]

    def check_channel(self, layer: str, channel: int) -> None:
        count = self.info(self.resolve_layer(layer)).channels
        if not 0 <= channel < count:
            raise FeatvizError(f"Channel {channel} is out of range: layer {layer!r} has {count} channels "
                               f"(0-{count - 1}).")


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
