"""Cache-aware batch rendering: many channels in few batched optimizations.

`render_channels` validates the request, serves what the store already has, splits the rest into
batches that fit the device's memory, runs `render` on each and stores every finished batch at once
(so a layer interrupted half-way keeps its finished channels). It yields `Progress` events.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..errors import FeatvizError
from ..models.hooks import LOGITS, LayerTap
from ..models.loading import LoadedModel
from ..optvis.objectives import Target
from ..optvis.param import to_uint8
from ..optvis.render import StepRecord, check_finite, check_photo, render
from ..spec.settings import RenderSettings, RenderSpec
from ..spec.targets import check_objective_layers
from ..store.disk import ChannelResult, Store, png_bytes

log = logging.getLogger(__name__)

SNAPSHOTS = 8  # evolution frames kept per channel (plus the final picture)


@dataclass
class Progress:
    """An event from render_channels: steps done so far out of all steps still to render."""

    done_steps: int
    total_steps: int
    finished: list[ChannelResult] = field(default_factory=list)  # results completed by this event
    preview: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (label, picture) mid-render


def resolve_targets(model: LoadedModel, layer_channels: Sequence[tuple[str, int]]) -> list[Target]:
    """Check layer names (aliases allowed) and channel ranges; return canonical targets."""
    targets = []
    for layer, channel in layer_channels:
        name = model.resolve_layer(layer)
        model.check_channel(name, int(channel))
        targets.append(Target(name, int(channel)))
    return targets


def spec_for(model: LoadedModel, target: Target, settings: RenderSettings) -> RenderSpec:
    return RenderSpec(model.name, model.digest, target.layer, target.channel, settings)


def snapshot_steps(steps: int, count: int = SNAPSHOTS) -> list[int]:
    """Evolution frames: dense early (where pictures change most), sparse late; always the last step."""
    marks = np.unique(np.round(np.geomspace(1, steps, num=min(count, steps))).astype(int))
    return sorted(set(int(m) for m in marks) | {steps})


MEMINFO = "/proc/meminfo"


def _free_host_memory() -> int:
    """RAM available to a new allocation, in bytes. Linux's MemAvailable counts the page cache the kernel
    would drop; sysconf's free pages do not, and after a pip install that cache can hold most of the RAM
    (CI saw batches cut to 3 for want of "free" memory). Total RAM where the platform says neither."""
    try:
        with open(MEMINFO) as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf(pages)
        except (ValueError, OSError, AttributeError):
            continue
    return 8 * 2**30


CPU_BLOCK_BYTES = 32 * 2**20  # glibc's largest mmap threshold


def max_batch(model: LoadedModel, layers: Sequence[str], size: int, cap: int | None = None) -> int:
    """How many pictures fit in one batch: measured bytes per picture against free memory."""
    sizes: list[int] = []
    probe_thread = threading.get_ident()

    def record(_module, _inputs, output):
        # The model may be shared: another session's forward pass meanwhile must not count here.
        if threading.get_ident() == probe_thread:
            sizes.append(output.numel() if isinstance(output, torch.Tensor) else 0)

    hooks = [m.register_forward_hook(record) for m in model.module.modules() if not list(m.children())]
    try:
        with torch.no_grad(), LayerTap(model.module, layers) as tap:
            tap.run(torch.zeros(1, model.in_channels, size + 24, size + 24, device=model.device))
    finally:
        for h in hooks:
            h.remove()
    per_picture = 4 * 3 * sum(sizes) + 64 * size * size  # fp32 outputs kept for backward, twice over, plus params
    if model.device.type == "cuda":
        free = torch.cuda.mem_get_info(model.device)[0] * 0.6
    else:
        free = _free_host_memory() * 0.3
    fit = max(1, int(free // per_picture))
    if cap or model.device.type == "cuda":  # a GPU wants big batches
        return min(fit, cap or 256)
    # On a CPU, glibc maps every block over 32 MiB afresh and the kernel zero-fills it on first touch,
    # every step: keep a batch's largest activation under that, and at most 8 pictures. Lite0 on 2
    # cores: 224 px in batches of 4 took 27 ms per picture-step, in batches of 8 38 ms; at 128 px,
    # batches of 8 were the fastest (1 -> 1.37 s, 8 -> 0.84 s, 32 -> 1.12 s per channel).
    largest = 4 * max(sizes, default=1)
    return min(fit, 8, max(1, CPU_BLOCK_BYTES // largest))


def plan_batches(layers: Sequence[str], cap: int, split_layers: bool) -> list[list[int]]:
    """Indices of `layers` (sorted shallow to deep) grouped into batches of at most `cap`, as even as
    possible: 16 pictures with a cap of 5 run as 4 batches of 4, not 5+5+5+1 (whose last batch costs
    as much as a full one on a CPU).

    With `split_layers` (a CPU, where time grows with the batch) a batch never mixes layers: a shallow
    picture batched with a deep one pays for the whole deep forward pass. A GPU costs about the same
    for a fuller batch, so there layers share batches."""
    runs: list[list[int]] = []
    for i, layer in enumerate(layers):
        if runs and (not split_layers or layers[runs[-1][0]] == layer):
            runs[-1].append(i)
        else:
            runs.append([i])
    batches = []
    for run in runs:
        count = -(-len(run) // max(1, cap))
        bounds = [round(k * len(run) / count) for k in range(count + 1)]
        batches += [run[a:b] for a, b in zip(bounds, bounds[1:])]
    return batches


def _results(targets, keys, curves, snaps, seconds) -> list[ChannelResult]:
    out = []
    for b, target in enumerate(targets):
        curve = curves[b].tolist()
        frames = [(step, png_bytes(images[b])) for step, images in snaps]
        out.append(ChannelResult(target.layer, target.channel, frames[-1][1], curve, frames, seconds,
                                 dead=max(curve) <= 0.0, key=keys[b]))
    return out


# A loop over one batch: (targets, snapshot steps) -> StepRecords, e.g. `render` or `dream` with their settings.
Loop = Callable[[list[Target], list[int]], Iterator[StepRecord]]


def _render_batch(loop: Loop, targets, keys, steps, done, total, preview_every) -> Iterator[Progress]:
    start = time.perf_counter()
    marks = snapshot_steps(steps)
    scores, snaps = [], []
    for record in loop(targets, marks):
        scores.append(record.scores)
        preview = []
        if record.snapshot is not None:
            frames = to_uint8(record.snapshot)
            snaps.append((record.step, frames))
            if preview_every:
                preview = [(str(t), frames[b]) for b, t in enumerate(targets)]
        yield Progress(done + record.step * len(targets), total, preview=preview)
    curves = torch.stack(scores, dim=1).float().cpu()
    check_finite(curves, targets)
    seconds = (time.perf_counter() - start) / len(targets)
    yield Progress(done + steps * len(targets), total, finished=_results(targets, keys, curves, snaps, seconds))


def render_channels(model: LoadedModel, layer_channels: Sequence[tuple[str, int]], settings: RenderSettings,
                    store: Store | None = None, batch_size: int | None = None, previews: bool = False,
                    photo: np.ndarray | None = None) -> Iterator[Progress]:
    """Render every (layer, channel) with `settings`, in batches, through the store.

    Yields Progress events; every result appears exactly once in some event's `finished` list,
    cached ones first. Channels of different layers share batches. Results are stored as each
    batch finishes. `photo` (HxWx3 uint8) is the starting picture of `init="photo"` settings."""
    targets = resolve_targets(model, layer_channels)
    check_objective_layers(settings.objective, [t.layer for t in targets])
    check_photo(settings, photo)
    keys = [spec_for(model, t, settings).key() for t in targets]

    def loop(batch: list[Target], marks: list[int]) -> Iterator[StepRecord]:
        return render(model, batch, settings, marks, photo=photo)

    yield from run_batches(model, targets, keys, loop, settings.steps, settings.size, store, batch_size, previews)


def run_batches(model: LoadedModel, targets: Sequence[Target], keys: Sequence[str], loop: Loop, steps: int, size: int,
                store: Store | None = None, batch_size: int | None = None, previews: bool = False) -> Iterator[Progress]:
    """Serve what the store has by key, then run `loop` on the rest in batches that fit in memory,
    storing each batch's results as it finishes. Yields Progress events (see render_channels)."""
    cached, todo, queued = [], [], set()
    for target, key in zip(targets, keys):
        hit = store.get(key) if store is not None else None
        if hit is not None:
            cached.append(hit)
        elif key not in queued:
            queued.add(key)
            todo.append((target, key))
    total = len(todo) * steps
    yield Progress(0, total, finished=cached)
    if not todo:
        return
    # Shallow first, so batches mostly hold one depth and early ones stop the forward pass early.
    depth = list(model.layers).index
    todo.sort(key=lambda tk: depth(tk[0].layer))
    # Sized once for the deepest layer asked for (a probe forward pass), not once per batch.
    cap = batch_size or max_batch(model, sorted({t.layer for t, _ in todo}, key=depth), size)
    split_layers = model.device.type != "cuda"

    def batches(items: list, cap: int) -> list[list]:
        return [[items[i] for i in batch] for batch in plan_batches([t.layer for t, _ in items], cap, split_layers)]

    queue = batches(todo, cap)
    done = 0
    while queue:
        chunk = queue.pop(0)
        try:
            for event in _render_batch(loop, [t for t, _ in chunk], [k for _, k in chunk], steps, done, total, previews):
                if store is not None:
                    for result in event.finished:
                        store.put(result)
                yield event
        except torch.cuda.OutOfMemoryError:
            if len(chunk) == 1:
                raise FeatvizError("Out of GPU memory for a single picture: choose a smaller size.") from None
            torch.cuda.empty_cache()
            cap = len(chunk) // 2
            log.warning("Out of GPU memory with %d pictures in a batch: halving the batches to at most %d "
                        "(pictures stay the same; pass a batch size to skip this retry).", len(chunk), cap)
            queue = batches(chunk + [item for batch in queue for item in batch], cap)
            continue
        done += len(chunk) * steps


def collect(events: Iterator[Progress]) -> list[ChannelResult]:
    """Run render_channels to the end and return its results in request order of completion."""
    return [r for e in events for r in e.finished]
