"""Where in the input a unit of a layer looks: its effective receptive field, measured on the model.

Why measured and not computed from kernel sizes and strides: the theoretical receptive field of a deep
layer spans the whole input (Lite0's blocks.5 sees far more than 224 px), so a crop of it would be the
whole photo. What a unit actually depends on is much narrower and roughly Gaussian (Luo et al., "Understanding
the Effective Receptive Field", NIPS 2016). We measure it on the loaded model itself, so any
architecture works: the gradient of one unit near the centre of the map with respect to the input,
averaged over a few noise inputs, and per axis the interval that holds the central `MASS` of the
gradient's absolute value. A unit elsewhere in the map sees the same interval shifted by its offset times
the layer's stride (input size / map size).

A transformer's token is the exception: after its first attention every token depends on the whole
picture, so a gradient probe finds no local field; a token stands for its own patch (the patch embedding
at its place on the grid), and its box is that patch, aligned to the patch grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models.hooks import LayerTap
from ..models.loading import LoadedModel

MASS = 0.9  # share of the gradient's weight the box holds
PROBES = 4  # noise inputs averaged


@dataclass(frozen=True)
class ReceptiveField:
    """Unit (`row`, `col`) of the map sees input pixels [x0, x1) x [y0, y1) (model-input coordinates)."""

    row: int
    col: int
    x0: float
    y0: float
    x1: float
    y1: float
    stride_y: float
    stride_x: float

    def box(self, row: int, col: int, size: int) -> tuple[float, float, float, float]:
        """The box of unit (`row`, `col`), clipped to the `size` x `size` input."""
        dy, dx = (row - self.row) * self.stride_y, (col - self.col) * self.stride_x
        return (float(np.clip(self.x0 + dx, 0, size)), float(np.clip(self.y0 + dy, 0, size)),
                float(np.clip(self.x1 + dx, 0, size)), float(np.clip(self.y1 + dy, 0, size)))

    def to_json(self) -> list[float]:
        return [self.row, self.col, self.x0, self.y0, self.x1, self.y1, self.stride_y, self.stride_x]

    @classmethod
    def from_json(cls, values) -> "ReceptiveField":
        return cls(int(values[0]), int(values[1]), *(float(v) for v in values[2:]))


def _central_interval(weights: np.ndarray, mass: float, minimum: float) -> tuple[float, float]:
    """The pixel interval [lo, hi) holding the central `mass` of `weights`, at least `minimum` wide."""
    cdf = np.cumsum(weights) / max(weights.sum(), 1e-30)
    tail = (1 - mass) / 2
    lo, hi = float(np.searchsorted(cdf, tail)), float(np.searchsorted(cdf, 1 - tail) + 1)
    if hi - lo < minimum:
        mid = (lo + hi) / 2
        lo, hi = mid - minimum / 2, mid + minimum / 2
    return lo, hi


def measure(model: LoadedModel, layer: str, seed: int = 0) -> ReceptiveField:
    """The effective receptive field of `layer`'s centre unit (summed over channels); a token's patch."""
    size = model.input_size
    info = model.info(layer)
    if info.tokens:
        stride_y, stride_x = size / info.height, size / info.width
        row, col = info.height // 2, info.width // 2
        return ReceptiveField(row, col, col * stride_x, row * stride_y, (col + 1) * stride_x, (row + 1) * stride_y,
                              stride_y, stride_x)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(PROBES, model.in_channels, size, size, generator=gen).to(model.device).requires_grad_(True)
    with torch.enable_grad(), LayerTap(model.module, [layer]) as tap:
        act = tap.run(model.normalize(x))[layer]
        height, width = act.shape[-2:]
        row, col = height // 2, width // 2
        act[:, :, row, col].sum().backward()
    grad = x.grad.detach().abs().sum(dim=(0, 1)).double().cpu().numpy()  # (size, size)
    stride_y, stride_x = size / height, size / width
    y0, y1 = _central_interval(grad.sum(axis=1), MASS, stride_y)
    x0, x1 = _central_interval(grad.sum(axis=0), MASS, stride_x)
    return ReceptiveField(row, col, x0, y0, x1, y1, stride_y, stride_x)
