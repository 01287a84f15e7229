"""The model card: a loaded model with its layers, and the layer/channel checks every entry point uses."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import FeatvizError, unknown_choice


@dataclass(frozen=True)
class LayerInfo:
    name: str
    channels: int
    height: int  # output size at the model's natural input size (1 for logits)
    width: int
    alias: str = ""
    tokens: bool = False  # a transformer's patch tokens laid on their grid (height x width tokens)


@dataclass
class LoadedModel:
    name: str
    module: nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    layers: dict[str, LayerInfo]  # ordered from shallow to deep, logits last
    aliases: dict[str, str]
    digest: str
    device: torch.device

    @property
    def in_channels(self) -> int:
        return len(self.mean)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the model's input space (channels_last, as the module is)."""
        return self.normalizer(images.device, images.dtype)(images)

    def normalizer(self, device: torch.device,
                   dtype: torch.dtype = torch.float32) -> Callable[[torch.Tensor], torch.Tensor]:
        """`normalize` with its mean and std built once: the render loop normalizes every step, and on
        a GPU building them per call is a host-to-device copy the step waits for."""
        mean = torch.tensor(self.mean, device=device, dtype=dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=device, dtype=dtype).view(1, -1, 1, 1)
        return lambda images: ((images - mean) / std).contiguous(memory_format=torch.channels_last)

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
