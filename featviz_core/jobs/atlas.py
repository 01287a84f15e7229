"""A whole-model atlas: every channel of the chosen layers, rendered once into the store.

`plan_atlas` lists every (layer, channel), drops what the store already holds and chooses the
batching rule (batching.py) for the rest, as the local runner would. `run_atlas` hands the batches
to the driver (driver.py: this process or Ray actors) one at a time from the batching rule's queue,
so a batch out of GPU memory lowers the cap of the batches after it; the driver writes each result
into the store the moment it arrives, so a killed run resumes where it stopped and the dashboard
serves every finished channel at once. Every picture has its own random stream, so it is the same
whatever the backend and however the batches fall.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Sequence

from ..backends.dispatch import run_work
from ..backends.work import CPU_THREADS, Finished, ModelSource
from ..errors import FeatvizError
from ..models.loading import LoadedModel
from ..spec.settings import RenderSettings, check_batch_size
from ..spec.targets import LOGITS, Target
from ..store.disk import Store
from ..store.uploads import cache_budget
from .batching import Batching, BatchQueue, batching_for, snapshot_steps
from .driver import drive
from .pictures import RenderBatch, spec_for
from .runner import resolve_targets


@dataclass
class AtlasPlan:
    """What an atlas still lacks, shallow to deep, and how it batches: the driver's queue (`queue`)
    hands the batches out one at a time, so a batch out of GPU memory lowers the cap of those after it."""

    layers: list[str]
    total: int  # pictures in the whole atlas
    settings: RenderSettings
    targets: list[Target] = field(default_factory=list)  # what the store does not hold yet
    keys: list[str] = field(default_factory=list)  # their cache keys, as the driver computes them
    batching: Batching = Batching(1, mix_layers=False)

    @property
    def todo(self) -> int:
        return len(self.targets)

    def queue(self) -> BatchQueue:
        return BatchQueue(self.targets, self.batching, self._batch)

    @property
    def batches(self) -> list[RenderBatch]:
        """The batches as planned, before any ran out of memory."""
        return list(self.queue())

    def _batch(self, targets: list[Target]) -> RenderBatch:
        # One torch thread on a CPU, so a picture has the same bits whichever backend rendered it.
        return RenderBatch(tuple((t.layer, t.channel) for t in targets), self.settings, threads=CPU_THREADS)


def atlas_layers(model: LoadedModel, names: Sequence[str] | None = None) -> list[str]:
    """The layers asked for (aliases allowed), shallow to deep; by default every layer the model
    lists except logits (the channel objective has no logits layer). For Lite0 that is the stem,
    every sub-block and stage output, and the head: 3,120 channels."""
    if not names:
        return [name for name in model.layers if name != LOGITS]
    chosen = {model.resolve_layer(name) for name in names}
    if LOGITS in chosen:
        raise FeatvizError(f"An atlas shows channels, not classes: leave {LOGITS!r} out of the layers.")
    return sorted(chosen, key=model.depth)


def atlas_keys(model: LoadedModel, layers: Sequence[str], settings: RenderSettings) -> list[tuple[Target, str]]:
    """Every (layer, channel) of `layers` with the cache key of its picture, shallow to deep."""
    targets = resolve_targets(model, [(layer, c) for layer in layers for c in range(model.info(layer).channels)])
    return [(t, spec_for(model, t, settings).key()) for t in targets]


@dataclass(frozen=True)
class MeasureBatching:
    """Work item: the workers' Batching, measured where the pictures will render, for a driver on
    another device (a CPU laptop driving GPU workers)."""

    layers: tuple[str, ...]
    size: int
    units: int = 0

    def run(self, model: LoadedModel) -> Batching:
        return batching_for(model, self.layers, self.size)


def workers_batching(source: ModelSource, layers: Sequence[str], size: int, ray: str | bool) -> Batching:
    """Ask one worker of the cluster how its device batches these layers."""
    ((_, batching),) = list(run_work(source, [MeasureBatching(tuple(layers), size)], ray, workers=1))
    return batching


def plan_atlas(model: LoadedModel, layers: Sequence[str], settings: RenderSettings, store: Store,
               batch_size: int | None = None, batching: Batching | None = None) -> AtlasPlan:
    """Every channel of `layers` that `store` lacks, in the batching rule's batches (shallow first).
    `batching`: the workers' rules when they differ from this model's device (workers_batching);
    `batch_size` overrides the memory-based size."""
    check_batch_size(batch_size)
    if settings.objective != "channel":
        raise FeatvizError(f"An atlas renders the channel objective; {settings.objective!r} is for single renders.")
    keyed = atlas_keys(model, layers, settings)
    todo = [(t, key) for t, key in keyed if key not in store]
    plan = AtlasPlan(list(layers), len(keyed), settings, [t for t, _ in todo], [key for _, key in todo])
    if todo:
        plan.batching = batching or batching_for(model, [t.layer for t in plan.targets], settings.size, batch_size)
        if batch_size:
            plan.batching = Batching(batch_size, plan.batching.mix_layers)
    return plan


def estimated_entry_bytes(settings: RenderSettings) -> int:
    """A picture's cache entry before any is rendered: its PNGs (the picture, each evolution frame
    and the picture again as the last frame) at about 0.7 bytes per pixel and colour for these busy
    pictures, in base64. Lite0's blocks.1:3 at 224 px and 96 steps measured 1.26 MB; this gives 1.26 MB."""
    return int((len(snapshot_steps(settings.steps)) + 1) * settings.size ** 2 * 3 * 0.7 * 4 / 3)


def check_room(store: Store, plan: AtlasPlan, per_picture: float) -> None:
    """Refuse an atlas that would not fit in the store: its least-recently-used eviction would drop
    the first pictures while the last render, and the atlas would never be complete."""
    need = plan.total * per_picture
    if need > store.size_limit:
        pictures, uploads = cache_budget()  # FEATVIZ_CACHE_GB is shared with uploads
        advice = math.ceil(1.2 * need * (pictures + uploads) / pictures / 2**30)
        raise FeatvizError(f"This atlas needs about {need / 2**30:.1f} GB of cache, more than the cache's limit of "
                           f"{store.size_limit / 2**30:.1f} GB: set FEATVIZ_CACHE_GB={advice} "
                           f"(or choose fewer layers with --layers).")


def run_atlas(source: ModelSource, model: LoadedModel, plan: AtlasPlan, store: Store, ray: str | bool | None = None,
              workers: int | None = None, progress: bool = True) -> int:
    """Render the plan's batches and store each result as it arrives; returns how many were rendered.
    One progress bar over the whole atlas (pictures already in the store count as done)."""
    from tqdm import tqdm

    rendered, queue = 0, plan.queue()
    with tqdm(total=plan.total, initial=plan.total - plan.todo, unit="picture", desc="atlas", file=sys.stderr,
              dynamic_ncols=True, disable=not progress) as bar:
        for _, event in drive(queue, store, source, model=None if ray else model, ray=ray, workers=workers,
                              expected=set(plan.keys)):
            if not isinstance(event, Finished):
                if event.cap is not None:  # out of GPU memory: the batches not handed out yet get the lower cap
                    queue.lower(event.cap)
                continue
            if not rendered:  # the estimate, checked against the first real pictures
                check_room(store, plan, sum(len(r.to_bytes()) for r in event.result) / len(event.result))
            rendered += len(event.result)
            bar.update(len(event.result))
    return rendered
