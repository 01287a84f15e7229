"""Pictures as work items: a batch of targets through one optimization loop (`optvis.render.render`
or `optvis.dream.dream`), turned into ChannelResults (PNGs, curves, evolution frames).

An item runs where the backend puts it (this process or a Ray actor) and never touches the store:
the driver stores what it returns. Its cache keys come from the model it runs on, so a worker with
other weights gives other keys and the driver refuses its pictures. On a GPU out of memory it
halves its batch (logged) and goes on; the pictures stay the same, since every picture draws from
its own random stream.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ..backends.work import Finished, Step
from ..errors import FeatvizError
from ..models.loading import LoadedModel
from ..optvis.dream import dream
from ..optvis.param import to_uint8
from ..optvis.render import StepRecord, check_finite, render
from ..spec import dream as dream_spec
from ..spec.dream import DreamSettings
from ..spec.layers import spec_for
from ..spec.settings import RenderSettings
from ..spec.targets import Target
from ..store.disk import ChannelResult, png_bytes
from .batching import Batching, BatchQueue, mixes_layers, snapshot_steps

log = logging.getLogger(__name__)


@contextmanager
def torch_threads(model: LoadedModel, threads: int | None):
    """Torch's thread count pinned while a CPU model renders (restored after): see work.CPU_THREADS."""
    before = torch.get_num_threads()
    if threads and model.device.type == "cpu":
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _results(targets, keys, curves, snaps, seconds) -> list[ChannelResult]:
    out = []
    for b, target in enumerate(targets):
        curve = curves[b].tolist()
        frames = [(step, png_bytes(images[b])) for step, images in snaps]
        out.append(ChannelResult(target.layer, target.channel, frames[-1][1], curve, frames, seconds,
                                 dead=max(curve) <= 0.0, key=keys[b]))
    return out


def _halved(pictures: int) -> int:
    """The cap after a batch of `pictures` ran out of GPU memory: half of it (said in the log)."""
    if pictures == 1:
        raise FeatvizError("Out of GPU memory for a single picture: choose a smaller size.") from None
    torch.cuda.empty_cache()
    log.warning("Out of GPU memory with %d pictures in a batch: halving the batches to at most %d "
                "(pictures stay the same; pass a batch size to skip this retry).", pictures, pictures // 2)
    return pictures // 2


@dataclass(frozen=True, eq=False)
class PictureBatch:
    """Work item: pictures of these (layer, channel) targets optimized as one batch. A subclass
    names the loop, its steps and the keys; its `threads` is torch's thread count while it runs on
    a CPU (None: as the process has it)."""

    targets: tuple[tuple[str, int], ...]
    threads = None

    @property
    def units(self) -> int:
        return len(self.targets)

    @property
    def steps(self) -> int:
        raise NotImplementedError

    def loop(self, model: LoadedModel, targets: list[Target], marks: list[int]) -> Iterator[StepRecord]:
        raise NotImplementedError

    def key(self, model: LoadedModel, target: Target) -> str:
        raise NotImplementedError

    def run(self, model: LoadedModel) -> list[ChannelResult]:
        return [r for event in self.stream(model) if isinstance(event, Finished) for r in event.result]

    def stream(self, model: LoadedModel) -> Iterator[Step | Finished]:
        """Steps (picture-steps done, previews) and the results of each part; out of GPU memory, the
        rest of the batch again in halves."""
        targets = [Target(layer, channel) for layer, channel in self.targets]
        # A batch planned for a GPU that lands on a CPU still renders a layer at a time there.
        queue = BatchQueue(targets, Batching(len(targets), mixes_layers(model.device)))
        done = 0
        with torch_threads(model, self.threads):
            for chunk in queue:
                try:
                    yield from self._chunk(model, chunk, done)
                except torch.cuda.OutOfMemoryError:
                    cap = _halved(len(chunk))
                    queue.lower(cap, retry=chunk)
                    yield Step(done, cap=cap)
                    continue
                done += len(chunk) * self.steps

    def _chunk(self, model: LoadedModel, targets: list[Target], done: int) -> Iterator[Step | Finished]:
        start = time.perf_counter()
        scores, snaps = [], []
        for record in self.loop(model, targets, snapshot_steps(self.steps)):
            scores.append(record.scores)
            preview = []
            if record.snapshot is not None:
                frames = to_uint8(record.snapshot)
                snaps.append((record.step, frames))
                preview = [(str(t), frames[b]) for b, t in enumerate(targets)]
            yield Step(done + record.step * len(targets), preview)
        curves = torch.stack(scores, dim=1).float().cpu()
        check_finite(curves, targets)
        seconds = (time.perf_counter() - start) / len(targets)
        keys = [self.key(model, t) for t in targets]
        yield Finished(_results(targets, keys, curves, snaps, seconds))


@dataclass(frozen=True, eq=False)
class RenderBatch(PictureBatch):
    """Channel pictures rendered with `settings`; `photo` (HxWx3 uint8) starts `init="photo"` ones."""

    settings: RenderSettings
    photo: np.ndarray | None = None
    threads: int | None = None

    @property
    def steps(self) -> int:
        return self.settings.steps

    def loop(self, model: LoadedModel, targets: list[Target], marks: list[int]) -> Iterator[StepRecord]:
        return render(model, targets, self.settings, marks, photo=self.photo)

    def key(self, model: LoadedModel, target: Target) -> str:
        return spec_for(model, target, self.settings).key()


@dataclass(frozen=True, eq=False)
class DreamBatch(PictureBatch):
    """Dreams of one photo (`photo_digest` names it in the keys) with `settings`; `guide`: the guide photo
    that `settings.guide` names."""

    settings: DreamSettings
    photo: np.ndarray
    photo_digest: str
    threads: int | None = None
    guide: np.ndarray | None = None

    @property
    def steps(self) -> int:
        return self.settings.steps

    def loop(self, model: LoadedModel, targets: list[Target], marks: list[int]) -> Iterator[StepRecord]:
        return dream(model, self.photo, targets, self.settings, marks, guide=self.guide)

    def key(self, model: LoadedModel, target: Target) -> str:
        return dream_spec.spec_for(model, self.photo_digest, target, self.settings).key()
