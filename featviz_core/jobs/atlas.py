"""A whole-model atlas: every channel of the chosen layers, rendered once into the store.

`plan_atlas` lists every (layer, channel), drops what the store already holds and groups the rest
into batches exactly as the local runner would (`runner.max_batch`, `runner.plan_batches`).
`run_atlas` sends the batches to workers (`workers.run_work`: this process or Ray actors) and writes
each result into the store the moment it arrives, so a killed run resumes where it stopped and the
dashboard serves every finished channel at once. Every picture has its own random stream, so it is
the same whatever the backend and however the batches fall.
"""
from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..errors import FeatvizError
from ..models.hooks import LOGITS
from ..models.loading import LoadedModel
from ..optvis.objectives import Target
from .runner import collect, max_batch, plan_batches, render_channels, resolve_targets, snapshot_steps, spec_for
from ..spec.settings import RenderSettings
from ..store.disk import ChannelResult, Store
from ..store.uploads import cache_budget
from ..backends.work import CPU_THREADS, ModelSource, run_work


@contextmanager
def cpu_threads(model: LoadedModel, threads: int):
    """Torch's thread count pinned while a CPU model renders (restored after): see CPU_THREADS."""
    before = torch.get_num_threads()
    if model.device.type == "cpu":
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class RenderBatch:
    """Work item: render these (layer, channel) pictures as one batch; returns ChannelResults
    (bytes and lists only)."""

    targets: tuple[tuple[str, int], ...]
    settings: RenderSettings

    @property
    def units(self) -> int:
        return len(self.targets)

    def run(self, model: LoadedModel) -> list[ChannelResult]:
        # The runner's own loop, as one batch with no store: a GPU out of memory halves it (logged)
        # and the pictures stay the same.
        with cpu_threads(model, CPU_THREADS):
            return collect(render_channels(model, list(self.targets), self.settings, None, batch_size=len(self.targets)))


@dataclass
class AtlasPlan:
    layers: list[str]
    total: int  # pictures in the whole atlas
    batches: list[RenderBatch] = field(default_factory=list)  # what the store does not hold yet
    keys: list[list[str]] = field(default_factory=list)  # each batch's cache keys, as the driver computes them

    @property
    def todo(self) -> int:
        return sum(b.units for b in self.batches)


def atlas_layers(model: LoadedModel, names: Sequence[str] | None = None) -> list[str]:
    """The layers asked for (aliases allowed), shallow to deep; by default every layer the model
    lists except logits (the channel objective has no logits layer). For Lite0 that is the stem,
    every sub-block and stage output, and the head: 3,120 channels."""
    if not names:
        return [name for name in model.layers if name != LOGITS]
    chosen = {model.resolve_layer(name) for name in names}
    if LOGITS in chosen:
        raise FeatvizError(f"An atlas shows channels, not classes: leave {LOGITS!r} out of the layers.")
    return [name for name in model.layers if name in chosen]


def atlas_keys(model: LoadedModel, layers: Sequence[str], settings: RenderSettings) -> list[tuple[Target, str]]:
    """Every (layer, channel) of `layers` with the cache key of its picture, shallow to deep."""
    targets = resolve_targets(model, [(layer, c) for layer in layers for c in range(model.layers[layer].channels)])
    return [(t, spec_for(model, t, settings).key()) for t in targets]


@dataclass(frozen=True)
class Batching:
    """How a device batches pictures (the runner's rules): at most `cap` to a batch; layers mixed in
    one batch on a GPU only (on a CPU a shallow picture would pay for a deep one's forward pass)."""

    cap: int
    mix_layers: bool


def batching_for(model: LoadedModel, layers: Sequence[str], size: int) -> Batching:
    return Batching(max_batch(model, sorted(layers, key=list(model.layers).index), size), model.device.type == "cuda")


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
    """Every channel of `layers` that `store` lacks, in the local runner's batches (shallow first).
    `batching`: the workers' rules when they differ from this model's device (workers_batching);
    `batch_size` overrides the memory-based size."""
    if settings.objective != "channel":
        raise FeatvizError(f"An atlas renders the channel objective; {settings.objective!r} is for single renders.")
    keyed = atlas_keys(model, layers, settings)
    todo = [(t, key) for t, key in keyed if key not in store]
    plan = AtlasPlan(list(layers), len(keyed))
    if not todo:
        return plan
    mix_layers = batching.mix_layers if batching else model.device.type == "cuda"
    cap = batch_size or (batching or batching_for(model, {t.layer for t, _ in todo}, settings.size)).cap
    for batch in plan_batches([t.layer for t, _ in todo], cap, split_layers=not mix_layers):
        plan.batches.append(RenderBatch(tuple((todo[i][0].layer, todo[i][0].channel) for i in batch), settings))
        plan.keys.append([todo[i][1] for i in batch])
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

    rendered = 0
    with tqdm(total=plan.total, initial=plan.total - plan.todo, unit="picture", desc="atlas", file=sys.stderr,
              dynamic_ncols=True, disable=not progress) as bar:
        for index, results in run_work(source, plan.batches, ray, workers, model=None if ray else model):
            if sorted(r.key for r in results) != sorted(plan.keys[index]):
                # The worker's model is not the driver's (other weights or code): its pictures would be
                # stored under keys that describe something else.
                raise FeatvizError("A worker rendered with a different model than this one (its weights or featviz "
                                   "version differ): install the same featviz and weights on every node.")
            for result in results:
                store.put(result)
            if not rendered:  # the estimate, checked against the first real pictures
                check_room(store, plan, sum(len(r.to_bytes()) for r in results) / len(results))
            rendered += len(results)
            bar.update(len(results))
    return rendered
