"""Robustness transforms: random pad / jitter / scale / rotate applied before each forward pass.

Lucid chains pad, jitter, scale, rotate and jitter as separate resamplings shared by the whole
batch. Here the random parts compose into one affine map per picture and one `grid_sample` call:
a single resampling (sharper), and each picture draws its own randomness from its own generator, so
a picture rendered in a batch of 80 is the same as rendered alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Robustness:
    pad: int = 12  # reflect-padding in pixels, hides the border from the jitter
    jitter: int = 8  # max translation in pixels (applied before and, halved, after scale/rotate)
    scale: float = 0.1  # scale drawn uniformly from 1 +- scale
    rotate: float = 10.0  # degrees, drawn uniformly from +-rotate

    @property
    def active(self) -> bool:
        return bool(self.pad or self.jitter or self.scale or self.rotate)


NONE = Robustness(0, 0, 0.0, 0.0)
LUCID = Robustness(12, 8, 0.1, 10.0)


def draw_params(rob: Robustness, steps: int, generators: list[torch.Generator]) -> torch.Tensor:
    """All random draws up front: (steps, B, 5) = scale, angle, tx, ty, (unused) per step and picture."""
    per_pic = []
    for g in generators:
        u = torch.rand(steps, 5, generator=g) * 2 - 1
        per_pic.append(torch.stack([
            1 + rob.scale * u[:, 0],
            math.radians(rob.rotate) * u[:, 1],
            rob.jitter * u[:, 2],
            rob.jitter * u[:, 3],
            rob.jitter * 0.5 * u[:, 4],
        ], dim=1))
    return torch.stack(per_pic, dim=1)


def apply(images: torch.Tensor, rob: Robustness, params: torch.Tensor) -> torch.Tensor:
    """Transform a batch with one step's params (B, 5)."""
    if not rob.active:
        return images
    if rob.pad:
        images = F.pad(images, [rob.pad] * 4, mode="reflect")
    size = images.shape[-1]
    scale, angle, tx, ty, post = params.unbind(dim=1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid maps output coords to input coords in [-1, 1]; pixels -> normalized is 2 / size.
    shift_x = (tx + post) * 2 / size
    shift_y = (ty - post) * 2 / size
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
