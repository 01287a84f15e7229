"""The model registry (a leaf, as timm keeps its own): the `register_model` decorator, the table of
builders it fills, and `ModelParts`, what a builder returns. zoo.py registers into it; loading.py reads it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # the registry is read by the dashboard's cached views, which import no torch
    from torch import nn

DEFAULT_MODEL = "lite0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelParts:
    """What a registered builder returns: the module and how to feed it."""

    module: nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int = 224
    layer_names: list[str] | None = None  # None: every module with a 4-D output
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> module name


Builder = Callable[[str | None], ModelParts]
REGISTRY: dict[str, tuple[Builder, str]] = {}  # name -> (builder, one-line description)


def register_model(name: str, description: str):
    """Decorator: register `builder(weights_path_or_None) -> ModelParts` under `name`."""

    def wrap(builder):
        REGISTRY[name] = (builder, description)
        return builder

    return wrap


def list_models() -> dict[str, str]:
    """Registered model names and one-line descriptions."""
    return {name: desc for name, (_, desc) in REGISTRY.items()}


def registered_builder(name: str) -> Builder | None:
    """The builder registered under `name`, or None."""
    entry = REGISTRY.get(name)
    return entry[0] if entry else None
