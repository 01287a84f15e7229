"""Deep Dream on a photo, and feature accentuation.

`dream` is the Deep Dream recipe as a generator of the same `StepRecord`s as `render.render`, so the
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

from ..models.hooks import LayerTap
from ..models.loading import LoadedModel
from ..spec.dream import DreamSettings
from . import objectives, param, transforms
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


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False)


def _ascend(image: torch.Tensor, grad: torch.Tensor, anchor: torch.Tensor, pull: float) -> torch.Tensor:
    """A normalized step up the gradient, then (accentuation) a pull back towards the photo."""
    step = grad / (grad.abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-8)
    image = image + LR * step
    if pull:
        image = image - pull * (image - anchor)  # the gradient step of (pull / 2) * ||image - photo||^2
    return image.clamp(0, 1)


def dream(model: LoadedModel, photo: np.ndarray, targets: Sequence[Target], settings: DreamSettings,
          snapshot_steps: Sequence[int] = ()) -> Iterator[StepRecord]:
    """Dream each target on `photo` (H, W, 3 uint8, centre square); yields a record after every step.

    Each picture draws its jitter from its own generator (seed and target), so it is the same alone or
    in a batch, and the same on every run. The last record carries the final pictures."""
    targets = list(targets)
    objective = for_targets(settings.objective, targets)
    gens = [element_generator(settings.seed, t) for t in targets]
    shifts = transforms.draw_params(JITTER, settings.steps, gens).to(model.device)
    photo_full = param.photo_images(photo, len(targets), model.in_channels, settings.size).to(model.device)
    sizes = param.octave_sizes(settings.size, settings.octaves, OCTAVE_SCALE)
    per_octave = steps_per_octave(settings.steps, len(sizes))
    sizes = sizes[len(sizes) - len(per_octave):]
    # Capped at all the way back: past 1 the step would overshoot the photo and diverge (strengths under PULL).
    pull = min(1.0, PULL / settings.accentuate) if settings.accentuate else 0.0
    wake = 0 if settings.objective == "layer" else WAKE_STEPS
    wanted = set(snapshot_steps) | {settings.steps}
    detail = torch.zeros_like(_resize(photo_full, sizes[0]))
    step = 0
    with LayerTap(model.module, objective.layers) as tap:
        for size, n_steps in zip(sizes, per_octave):
            base = _resize(photo_full, size).clamp(0, 1)
            image = (base + _resize(detail, size)).clamp(0, 1)  # the detail dreamed so far, carried up
            for _ in range(n_steps):
                image.requires_grad_(True)
                with redirected_relu(step < wake):
                    x = transforms.apply(image, JITTER, shifts[step])
                    scores = objective(tap.run(model.normalize(x)))
                    grad, = torch.autograd.grad(scores.sum(), image)
                with torch.no_grad():
                    image = _ascend(image.detach(), grad, base, pull)
                step += 1
                snapshot = _resize(image, settings.size).clamp(0, 1) if step in wanted else None
                yield StepRecord(step, settings.steps, scores.detach(), snapshot)
            detail = image - base


def objective_values(model: LoadedModel, images: torch.Tensor, targets: Sequence[Target], kind: str) -> torch.Tensor:
    """The dream objective of each picture (B, C, H, W in [0, 1]) for its target, without jitter."""
    objective = for_targets(kind, list(targets))
    with torch.no_grad(), LayerTap(model.module, objective.layers) as tap:
        return objective(tap.run(model.normalize(images.to(model.device)))).float().cpu()
