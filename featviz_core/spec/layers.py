"""A model's layers as every entry point checks them: `LayerInfo`, the layer and channel checks, and
the canonical targets and render specs built from them; and `ModelCard`, what the cache keys read of
a model. Plain values (no torch), so that the dashboard serves a cached view from a model's card
without loading the model."""
from __future__ import annotations

from dataclasses import dataclass, field
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


# A card as JSON: anything else is a miss (and the card is written again).
CARD_SHAPE = {"digest": str, "aliases": dict, "in_channels": int, "layers": [(str, int, int, int, str)],
              "modules": [(str, int, int, int, str, bool)]}


@dataclass
class ModelCard(LayerCard):
    """What is known of a model without loading it: its layers, and what its cache keys read (the
    weights digest and the input channels). Every key function of the core (`spec_for`, `circuit_key`,
    `similarity_key`, ...) takes a card as it takes the loaded model, so a view finds stored results
    by key without torch."""

    name: str
    digest: str
    layers: dict[str, LayerInfo]
    aliases: dict[str, str] = field(default_factory=dict)
    in_channels: int = 3
    modules: dict[str, LayerInfo] = field(default_factory=dict)  # every module that is a layer, shallow to deep

    @classmethod
    def of(cls, model: ModelCard) -> ModelCard:
        """The card of a loaded model (or of another card)."""
        return cls(model.name, model.digest, dict(model.layers), dict(model.aliases), model.in_channels,
                   dict(model.modules))

    def to_json(self) -> dict:
        return {"digest": self.digest, "aliases": self.aliases, "in_channels": self.in_channels,
                "layers": [[i.name, i.channels, i.height, i.width, i.alias] for i in self.layers.values()],
                "modules": [[i.name, i.channels, i.height, i.width, i.alias, i.tokens] for i in self.modules.values()]}

    @classmethod
    def from_json(cls, name: str, doc: dict) -> ModelCard:
        """The card `to_json` wrote (of CARD_SHAPE)."""
        return cls(name, doc["digest"], {row[0]: LayerInfo(*row) for row in doc["layers"]}, dict(doc["aliases"]),
                   doc["in_channels"], {row[0]: LayerInfo(*row) for row in doc["modules"]})


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
