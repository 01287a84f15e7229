"""Deep Dream on a photo, and feature accentuation.

`dream` is the Deep Dream recipe on the whole photo at its own shape (large photos in tiles:
dream_tiles.py), as a generator of the same `StepRecord`s as `render.render`, so the
driver (jobs/dreams.py), the store, curves and evolution take it unchanged: gradient ascent on the photo's own pixels,
octave by octave from small to full size with the dreamed detail carried up to the next octave,
random jitter before every forward pass, and gradient steps normalized by their mean magnitude.

Targets: a whole layer (`objective="layer"`, Deep Dream's mean square of the layer's activations),
one channel, or a class logit. `accentuate=S` is feature accentuation (Hamblin et al. 2024): start
from the photo and raise one target while an L2 penalty pulls the picture back to the photo after
every step; S is the strength (a larger S lets the feature move the picture further).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..inputs.photos import whole_photo
from ..models.hooks import LayerTap
from ..models.loading import LoadedModel
from ..spec.dream import DreamSettings, dream_shape
from . import dream_tiles, objectives, param, transforms
from .objectives import Target
from .redirect import redirected_relu
from .render import StepRecord, element_generator, steps_per_octave

OCTAVE_SCALE = 1.4  # Deep Dream's own growth per octave
LR = 0.01  # mean absolute change of a pixel per step, in [0, 1] units
JITTER = transforms.Robustness(pad=0, jitter=8, scale=0.0, rotate=0.0)  # shifts only: the photo stays put
PULL = 0.1  # accentuation: the share of the way back to the photo per step, at strength 1
WAKE_STEPS = 8  # a channel or logit off on the photo gets lucid's redirected ReLU gradient this long


def for_targets(kind: str, targets: list[Target]) -> objectives.Objective:
    """The objective a dream maximizes: a layer's energy, or a channel's mean, or a logit."""
    return objectives.layer_energy(targets) if kind == "layer" else objectives.for_targets(kind, targets)


def _resize(images: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(images.shape[-2:]) == tuple(shape):
        return images
    return F.interpolate(images, size=tuple(shape), mode="bicubic", align_corners=False)


def photo_batch(photo: np.ndarray, batch: int, channels: int, shape: tuple[int, int]) -> torch.Tensor:
    """The whole photo at `shape` (height, width) in [0, 1], `batch` copies (B, C, H, W) that share one
    photo's memory (read only)."""
    planes = np.ascontiguousarray(whole_photo(photo, shape).transpose(2, 0, 1))
    image = torch.from_numpy(planes).float().div_(255)
    if channels == 1:
        image = image.mean(dim=0, keepdim=True)
    return image.unsqueeze(0).expand(batch, -1, -1, -1)


def octave_shapes(photo_shape: tuple[int, ...], settings: DreamSettings) -> list[tuple[int, int]]:
    """Each octave's (height, width): the longer side as the square recipe had it, the shorter in proportion."""
    sizes = param.octave_sizes(settings.size, settings.octaves, OCTAVE_SCALE)
    return [dream_shape(photo_shape, size) for size in sizes]


def _ascend(image: torch.Tensor, grad: torch.Tensor, anchor: torch.Tensor, pull: float) -> torch.Tensor:
    """A normalized step up the gradient, then (accentuation) a pull back towards the photo; in place
    (a large photo's step allocates as little as it can)."""
    step = grad.div_(dream_tiles.mean_abs(grad) + 1e-8)
    image = image.add_(step.mul_(LR))
    if pull:
        image = image.sub_(pull * (image - anchor))  # the gradient step of (pull / 2) * ||image - photo||^2
    return image.clamp_(0, 1)


def _objective(model: LoadedModel, targets: list[Target], settings: DreamSettings, guide) -> objectives.Objective:
    if guide is None:
        return for_targets(settings.objective, targets)
    features = dream_tiles.guide_features(model, guide, [t.layer for t in targets], model.in_channels)
    return dream_tiles.guide_match(targets, features)


def dream(model: LoadedModel, photo: np.ndarray, targets: Sequence[Target], settings: DreamSettings,
          snapshot_steps: Sequence[int] = (), guide: np.ndarray | None = None) -> Iterator[StepRecord]:
    """Dream each target on the whole `photo` (H, W, 3 uint8) at its own shape, the longer side `settings.size`;
    yields a record after every step. `guide` (a photo): the match to its features replaces a layer's energy.

    Each picture draws its jitter from its own generator (seed and target), so it is the same alone or
    in a batch, and the same on every run. The last record carries the final pictures."""
    targets = list(targets)
    objective = _objective(model, targets, settings, guide)
    gens = [element_generator(settings.seed, t) for t in targets]
    shifts = transforms.draw_params(JITTER, settings.steps, gens).to(model.device)
    shapes, per_octave = _plan(photo.shape, settings)
    photo_full = photo_batch(photo, len(targets), model.in_channels, shapes[-1]).to(model.device)
    # Capped at all the way back: past 1 the step would overshoot the photo and diverge (strengths under PULL).
    pull = min(1.0, PULL / settings.accentuate) if settings.accentuate else 0.0
    wake = 0 if settings.objective == "layer" else WAKE_STEPS
    wanted = set(snapshot_steps) | {settings.steps}
    detail = None  # nothing dreamed yet
    step = 0
    with LayerTap(model.module, objective.layers) as tap:
        def score(tile: torch.Tensor) -> torch.Tensor:
            return objective(tap.run(model.normalize(transforms.apply(tile, JITTER, shifts[step]))))
        for shape, n_steps in zip(shapes, per_octave):
            base = photo_full if shape == shapes[-1] else _resize(photo_full, shape).clamp(0, 1)
            # The detail dreamed so far, carried up (a large photo's step allocates as little as it can).
            image = base.clone() if detail is None else (base + _resize(detail, shape)).clamp(0, 1)
            detail = None
            for _ in range(n_steps):
                roll = dream_tiles.roll_for(settings.seed, step, shape)
                with redirected_relu(step < wake):
                    grad, scores = dream_tiles.tiled_grad(image, score, roll)
                with torch.no_grad():
                    image = _ascend(image.detach(), grad, base, pull)
                del grad
                step += 1
                snapshot = _resize(image, shapes[-1]).clamp(0, 1) if step in wanted else None
                yield StepRecord(step, settings.steps, scores, snapshot)
            detail = image - base


def objective_values(model: LoadedModel, images: torch.Tensor, targets: Sequence[Target], kind: str) -> torch.Tensor:
    """The dream objective of each picture (B, C, H, W in [0, 1]) for its target, without jitter."""
    objective = for_targets(kind, list(targets))
    with torch.no_grad(), LayerTap(model.module, objective.layers) as tap:
        return objective(tap.run(model.normalize(images.to(model.device)))).float().cpu()


def _plan(photo_shape: tuple[int, ...], settings: DreamSettings) -> tuple[list[tuple[int, int]], list[int]]:
    """The octaves that get steps (fewer steps than octaves: the last ones), and their steps."""
    shapes = octave_shapes(photo_shape, settings)
    per_octave = steps_per_octave(settings.steps, len(shapes))
    return shapes[len(shapes) - len(per_octave):], per_octave


def megapixel_steps(photo_shape: tuple[int, ...], settings: DreamSettings) -> float:
    """A dream's work in megapixel-steps: every octave's pixels times its steps."""
    return sum(h * w * n for (h, w), n in zip(*_plan(photo_shape, settings))) / 1e6


def estimate_seconds(model: LoadedModel, photo_shape: tuple[int, ...], targets: Sequence[Target],
                     settings: DreamSettings) -> float:
    """About how long dreaming `targets` takes here: a measured step of the deepest layer, per megapixel,
    times the dreams' megapixel-steps."""
    layers = [t.layer for t in targets]
    rate = dream_tiles.seconds_per_megapixel_step(model, layers, side=min(dream_tiles.TILE, settings.size))
    return rate * megapixel_steps(photo_shape, settings) * len(targets)
