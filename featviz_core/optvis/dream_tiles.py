"""The parts of a dream of a whole, large photo: the gradient in tiles, the guide objective, the time estimate.

Tiles (as Deep Dream does it): a picture larger than TILE on a side is rolled by a random shift, its
gradient computed tile by tile (every tile through the model on its own, with the step's jitter), and
rolled back; so the memory of a step is that of one tile, whatever the photo's size, and the seams
move every step. Each tile's score counts by its share of the picture, so a small edge tile does not
get a larger step. A picture that fits one tile is one forward pass, as before tiles existed.

The guide (Deep Dream's `objective_guide`): each position of the dreamed layer's features is pulled
towards the guide's feature that matches it best (largest dot product), as in the original notebook
rather than towards the guide's mean feature: every part of the photo takes the guide's feature
nearest to what it already shows, so the guide's several textures land where they fit, and the
objective stays local (a sum over positions), which is what lets it be computed tile by tile.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np
import torch

from ..inputs.photos import whole_photo
from ..models.hooks import LayerTap
from ..models.loading import LoadedModel
from ..spec.dream import dream_shape
from ..spec.targets import Target
from . import objectives

TILE = 512  # pixels per side of a tile: the memory of one step
GUIDE_SIDE = 512  # the guide photo's longer side when its features are taken (one tile)


def spans(length: int, tile: int = TILE) -> list[tuple[int, int]]:
    """`length` cut into equal parts of at most `tile` (no thin sliver at the end)."""
    n = max(1, math.ceil(length / tile))
    cuts = [round(i * length / n) for i in range(n + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def roll_for(seed: int, step: int, shape: tuple[int, int]) -> tuple[int, int]:
    """The step's random shift of the tile grid: from the seed and step only, so a picture is the same
    alone or in a batch."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return int(torch.randint(shape[0], (1,), generator=g)), int(torch.randint(shape[1], (1,), generator=g))


def mean_abs(grad: torch.Tensor) -> torch.Tensor:
    """Each element's mean absolute gradient, (B, 1, 1, 1); for a picture larger than a tile without a
    temporary copy of the gradient."""
    if max(grad.shape[-2:]) <= TILE:
        return grad.abs().mean(dim=(1, 2, 3), keepdim=True)
    return (torch.linalg.vector_norm(grad, ord=1, dim=(1, 2, 3)) / grad[0].numel()).view(-1, 1, 1, 1)


def tiled_grad(image: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor],
               shift: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(gradient of the picture's score, score per element) with the score computed tile by tile on the
    picture rolled by `shift`. `score(tile)` is the (B,) objective of a (B, C, h, w) tile. The roll is
    never made: each tile gathers its pixels from the picture (wrapping around) and puts its gradient
    straight back, so a step holds the picture, its gradient and one tile."""
    h, w = image.shape[-2:]
    if h <= TILE and w <= TILE:
        image = image.detach().requires_grad_(True)
        scores = score(image)
        grad, = torch.autograd.grad(scores.sum(), image)
        return grad, scores.detach()
    image = image.detach()
    grad = torch.empty_like(image)
    total = torch.zeros(image.shape[0], device=image.device)
    for top, bottom in spans(h):
        rows = (torch.arange(top, bottom, device=image.device) - shift[0]) % h
        for left, right in spans(w):
            cols = (torch.arange(left, right, device=image.device) - shift[1]) % w
            tile = image.index_select(2, rows).index_select(3, cols).requires_grad_(True)
            scores = score(tile).float() * ((bottom - top) * (right - left) / (h * w))
            tile_grad, = torch.autograd.grad(scores.sum(), tile)
            grad[:, :, rows[:, None], cols[None, :]] = tile_grad
            total += scores.detach()
    return grad, total


def guide_features(model: LoadedModel, guide: np.ndarray, layers: Sequence[str], channels: int) -> dict:
    """The guide photo's features at each layer, (C, N) per layer: the photo at its own shape, its longer
    side GUIDE_SIDE (or its own, if smaller)."""
    shape = dream_shape(guide.shape, min(GUIDE_SIDE, max(guide.shape[:2])))
    image = torch.from_numpy(whole_photo(guide, shape).astype(np.float32) / 255).permute(2, 0, 1)[None]
    if channels == 1:
        image = image.mean(dim=1, keepdim=True)
    with torch.no_grad(), LayerTap(model.module, tuple(dict.fromkeys(layers))) as tap:
        acts = tap.run(model.normalize(image.to(model.device)))
    return {layer: acts[layer][0].float().flatten(1) for layer in dict.fromkeys(layers)}


def guide_match(targets: list[Target], features: dict) -> objectives.Objective:
    """Each element's mean over positions of the dot product of its features with the guide's best match."""
    def score(a, rows):
        out = []
        for b, act in enumerate(a):
            x = act.float().flatten(1)  # (C, positions)
            y = features[targets[int(rows[b])].layer].to(x.device)
            best = y[:, (x.detach().T @ y).argmax(dim=1)]  # the guide's feature nearest each position
            out.append((x * best).sum(dim=0).mean())
        return torch.stack(out)
    return objectives._per_element(targets, score, "guide match", whole_layer=True)


def guide_dot(model: LoadedModel, images: torch.Tensor, targets: Sequence[Target], features: dict) -> torch.Tensor:
    """The guide objective of finished pictures (B, C, H, W in [0, 1]), without jitter or tiles."""
    objective = guide_match(list(targets), features)
    with torch.no_grad(), LayerTap(model.module, objective.layers) as tap:
        return objective(tap.run(model.normalize(images.to(model.device)))).float().cpu()


def seconds_per_megapixel_step(model: LoadedModel, layers: Sequence[str], side: int = 224) -> float:
    """Measured: one gradient step (forward to the deepest layer and back) of a `side` square picture, per
    megapixel. The first pass warms up and is not counted."""
    image = torch.rand(1, model.in_channels, side, side, device=model.device)
    with LayerTap(model.module, tuple(dict.fromkeys(layers))) as tap:
        times = []
        for _ in range(2):
            start = time.perf_counter()
            x = image.clone().requires_grad_(True)
            acts = tap.run(model.normalize(x))
            total = sum(a.float().pow(2).mean() for a in acts.values())
            torch.autograd.grad(total, x)
            times.append(time.perf_counter() - start)
    return times[-1] / (side * side / 1e6)
