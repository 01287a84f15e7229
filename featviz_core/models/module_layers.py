"""Every module of a model as a layer: the shape of each module's output, recorded in the probe forward
pass that load_model makes anyway (one hook per module: a few milliseconds for Lite0's 270 modules).

A module is a layer when it runs once per forward pass (a module called several times, such as
torchvision ResNet's shared `relu`, names no one tensor) and gives a feature map: a 4-D output, or in a
token model (a ViT) a token sequence that lies on the patch grid (its other 4-D outputs, such as
attention maps, are not feature maps)."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from ..errors import FeatvizError
from ..spec.layers import LayerInfo
from .hooks import ADAPTER


@contextlib.contextmanager
def output_shapes(module: nn.Module) -> Iterator[dict[str, list]]:
    """Within the block, records {module name: [output shape, calls, tokens]} in the order the outputs
    are complete (a block after its parts); `tokens`: a token sequence laid on its grid."""
    seen: dict[str, list] = {}
    adapt = getattr(module, ADAPTER, None)

    def record(name: str):
        def hook(_module, _inputs, output):
            entry = seen.setdefault(name, [None, 0, False])
            entry[1] += 1
            if isinstance(output, torch.Tensor) and entry[1] == 1:
                entry[0], entry[2] = _shape(adapt, name, output)
        return hook

    handles = [sub.register_forward_hook(record(name)) for name, sub in module.named_modules() if name]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _shape(adapt, name: str, output: torch.Tensor) -> tuple[tuple, bool]:
    if adapt is None:
        return tuple(output.shape), False
    if output.dim() != 3:
        return (), False  # in a token model only token sequences are feature maps
    try:
        return tuple(adapt(name, output).shape), True
    except FeatvizError:  # a sequence of another length (a pooled token): no grid
        return (), False


def module_layers(seen: dict[str, list], listed: dict[str, LayerInfo], runs: set[str]) -> dict[str, LayerInfo]:
    """Every module that is a layer (the listed ones as listed), in the order their outputs are complete;
    only names in `runs` (the modules of the model as it runs, after batch norms are folded)."""
    layers: dict[str, LayerInfo] = {}
    for name, (shape, calls, tokens) in seen.items():
        if name in listed:
            layers[name] = listed[name]
        elif name in runs and calls == 1 and len(shape) == 4:
            layers[name] = LayerInfo(name, shape[1], shape[2], shape[3], "", tokens)
    return layers
