"""Concept pictures: each concept's direction climbed by the one render loop (optvis.render with the
`direction` objective), cached like every picture (its key holds the rounded direction, spec/direction.py),
through the same driver as channel pictures; and their self-check, as the channel self-check does it
but along directions: a picture's mean activation (over random views) projected on every concept's
direction, as a robust z against the natural photo crops projected the same way, and its rank among
the layer's concepts (1: the picture drives its own concept most).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from ..errors import FeatvizError
from ..jobs.driver import Progress, drive_pictures
from ..jobs.pictures import PictureBatch
from ..models.loading import LoadedModel
from ..optvis import objectives
from ..optvis.render import StepRecord, render
from ..spec.direction import direction_key
from ..spec.layers import spec_for
from ..spec.settings import RenderSettings
from ..spec.targets import Target, check_objective_layers
from ..store.disk import Store
from ..store.lookup import cached_json
from .concepts import check_doc, directions
from .selfcheck import STATS_VERSION, natural_means, robust_stats, view_means


@dataclass(frozen=True, eq=False)
class DirectionBatch(PictureBatch):
    """Pictures of (layer, concept) targets, each climbing its concept's direction (`directions[concept]`)."""

    settings: RenderSettings
    directions: tuple[tuple[float, ...], ...] = ()
    power: float = 0.0
    threads: int | None = None

    @property
    def steps(self) -> int:
        return self.settings.steps

    def loop(self, model: LoadedModel, targets: list[Target], marks: list[int]) -> Iterator[StepRecord]:
        table = [self.directions[t.channel] for t in targets]
        return render(model, targets, self.settings, marks, objective=objectives.direction(targets, table, self.power))

    def key(self, model: LoadedModel, target: Target) -> str:
        return direction_key(spec_for(model, target, self.settings), self.directions[target.channel], self.power)


def render_concepts(model: LoadedModel, doc: dict, settings: RenderSettings, store: Store | None = None,
                    power: float = 0.0, previews: bool = False, concepts: Sequence[int] | None = None,
                    batch_size: int | None = None) -> Iterator[Progress]:
    """A picture of each concept of `doc` (or of `concepts`), as render_channels renders channels: Progress
    events whose `finished` results are ChannelResults with `channel` = the concept's index."""
    check_doc(model, doc)
    check_objective_layers(settings.objective, [doc["layer"]])
    table = tuple(tuple(c["direction"]) for c in doc["concepts"])
    chosen = list(range(len(table))) if concepts is None else [int(c) for c in concepts]
    if any(not 0 <= c < len(table) for c in chosen):
        raise FeatvizError(f"Concepts {chosen} are out of range: choose from 0 to {len(table) - 1}.")
    targets = [Target(doc["layer"], c) for c in chosen]
    keys = [direction_key(spec_for(model, t, settings), table[t.channel], power) for t in targets]

    def batch(chunk: list[Target]) -> DirectionBatch:
        return DirectionBatch(tuple((t.layer, t.channel) for t in chunk), settings, table, power)

    yield from drive_pictures(model, targets, keys, batch, settings.steps, settings.size, store, batch_size, previews)


@dataclass(frozen=True)
class ConceptScore:
    concept: int
    activation: float  # the picture's mean activation along the concept's direction, over random views
    z: float  # robust z against natural photo crops along the same direction
    rank: int  # 1: the picture's own concept has the highest z of the layer's concepts
    concepts: int
    layer_z: tuple[float, ...] = field(default=(), compare=False, repr=False)  # every concept's z


def natural_projections(model: LoadedModel, doc: dict, size: int, store: Store | None = None) -> np.ndarray:
    """(crops, k) the natural photo crops' mean activations projected on each concept's direction."""
    means = cached_json(store, ("natural-means", STATS_VERSION, model.digest, doc["layer"], size),
                        lambda: natural_means(model, doc["layer"], size).tolist(), [[float]])
    return np.asarray(means, dtype=np.float64) @ directions(doc).double().numpy().T


def concept_scores(model: LoadedModel, doc: dict, pictures: Sequence[np.ndarray], concepts: Sequence[int] | None = None,
                   store: Store | None = None) -> list[ConceptScore]:
    """The self-check of concept pictures (HxWxC uint8, one size; picture i of concept `concepts[i]`,
    default i)."""
    check_doc(model, doc)
    concepts = list(range(len(pictures))) if concepts is None else [int(c) for c in concepts]
    stats = robust_stats(natural_projections(model, doc, np.asarray(pictures[0]).shape[1], store))
    median, scale = np.asarray(stats["median"]), np.asarray(stats["scale"])
    acts = view_means(model, pictures, doc["layer"]) @ directions(doc).double().numpy().T
    z = (acts - median) / scale
    return [ConceptScore(c, float(acts[i, c]), float(z[i, c]), int((z[i] > z[i, c]).sum()) + 1, z.shape[1],
                         tuple(float(v) for v in z[i])) for i, c in enumerate(concepts)]
