"""The loaded model: its module, how to feed it, and its layers (the checks every entry point uses are
spec.layers.LayerCard's)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..spec.layers import LayerCard, LayerInfo  # noqa: F401 (LayerInfo: a model's layers)


@dataclass
class LoadedModel(LayerCard):
    name: str
    module: nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    layers: dict[str, LayerInfo]  # the listed ones, ordered from shallow to deep, logits last
    modules: dict[str, LayerInfo]  # every module that is a layer (listed ones included), shallow to deep
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
