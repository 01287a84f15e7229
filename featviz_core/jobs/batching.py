"""The one batching rule: how many pictures share a batch on this device, and which.

A batch's size is measured (bytes per picture against free memory); on a CPU at most
`work.CPU_BATCH` pictures, and a batch keeps to one layer: there time grows with the batch, and a
shallow picture batched with a deep one pays for the whole deep forward pass. A GPU costs about the
same for a fuller batch, so there batches mix layers (and the render service mixes visitors).
"""
from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..backends.work import CPU_BATCH, Work
from ..models.hooks import LayerTap
from ..models.loading import LoadedModel
from ..spec.settings import check_batch_size
from ..spec.targets import Target

SNAPSHOTS = 8  # evolution frames kept per channel (plus the final picture)
MEMINFO = "/proc/meminfo"
CPU_BLOCK_BYTES = 32 * 2**20  # glibc's largest mmap threshold
GPU_BATCH = 256  # the most pictures in a GPU batch


def snapshot_steps(steps: int, count: int = SNAPSHOTS) -> list[int]:
    """Evolution frames: dense early (where pictures change most), sparse late; always the last step."""
    marks = np.unique(np.round(np.geomspace(1, steps, num=min(count, steps))).astype(int))
    return sorted(set(int(m) for m in marks) | {steps})


def mixes_layers(device: torch.device) -> bool:
    """Whether batches on `device` may mix layers (and visitors' pictures): on a GPU only."""
    return device.type == "cuda"


def free_host_memory() -> int:
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


def _activation_sizes(model: LoadedModel, layers: Sequence[str], size: int) -> list[int]:
    """Elements of every leaf module's output in one forward pass of one picture (padded by 24 px)."""
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
    return sizes


def max_batch(model: LoadedModel, layers: Sequence[str], size: int, cap: int | None = None) -> int:
    """How many pictures fit in one batch: measured bytes per picture against free memory."""
    sizes = _activation_sizes(model, layers, size)
    per_picture = 4 * 3 * sum(sizes) + 64 * size * size  # fp32 outputs kept for backward, twice over, plus params
    if model.device.type == "cuda":
        free = torch.cuda.mem_get_info(model.device)[0] * 0.6
    else:
        free = free_host_memory() * 0.3
    fit = max(1, int(free // per_picture))
    if cap or model.device.type == "cuda":  # a GPU wants big batches
        return min(fit, cap or GPU_BATCH)
    # On a CPU, glibc maps every block over 32 MiB afresh and the kernel zero-fills it on first touch,
    # every step: keep a batch's largest activation under that, and at most CPU_BATCH pictures. Lite0 on
    # 2 cores: 224 px in batches of 4 took 27 ms per picture-step, in batches of 8 38 ms; at 128 px,
    # batches of 8 were the fastest (1 -> 1.37 s, 8 -> 0.84 s, 32 -> 1.12 s per channel).
    largest = 4 * max(sizes, default=1)
    return min(fit, CPU_BATCH, max(1, CPU_BLOCK_BYTES // largest))


def plan_batches(layers: Sequence[str], cap: int, split_layers: bool) -> list[list[int]]:
    """Indices of `layers` (sorted shallow to deep) grouped into batches of at most `cap`, as even as
    possible: 16 pictures with a cap of 5 run as 4 batches of 4, not 5+5+5+1 (whose last batch costs
    as much as a full one on a CPU). With `split_layers` a batch never mixes layers (see above)."""
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


@dataclass(frozen=True)
class Batching:
    """How a device batches pictures: at most `cap` to a batch; layers mixed in one batch on a GPU only."""

    cap: int
    mix_layers: bool

    def plan(self, layers: Sequence[str]) -> list[list[int]]:
        """plan_batches under these rules."""
        return plan_batches(layers, self.cap, split_layers=not self.mix_layers)


def batching_for(model: LoadedModel, layers: Sequence[str], size: int, cap: int | None = None) -> Batching:
    """This model's device's rules for pictures of `layers` at `size` px; `cap` (a batch size asked
    for) replaces the measured size. Sized once for the deepest layer (a probe forward pass)."""
    check_batch_size(cap)
    ordered = sorted(set(layers), key=model.depth)
    return Batching(cap or max_batch(model, ordered, size), mixes_layers(model.device))


class BatchQueue:
    """Pictures still to render, planned into batches by these rules, handed out one at a time (`make`
    turns a batch's targets into what is handed out). The one re-plan rule after a batch ran out of GPU
    memory: `lower` plans the batches not handed out yet, and the batch handed back, under the lower cap.
    The driver's queue of work items and a work item's own queue of batches are both one of these."""

    def __init__(self, targets: Sequence[Target], batching: Batching,
                 make: Callable[[list[Target]], Work | list[Target]] = list):
        self.batching, self.make = batching, make
        self.pending = self._plan(list(targets))

    def _plan(self, targets: list[Target]) -> deque[list[Target]]:
        return deque([targets[i] for i in batch] for batch in self.batching.plan([t.layer for t in targets]))

    def __iter__(self) -> Iterator:
        while self.pending:
            yield self.make(self.pending.popleft())

    def lower(self, cap: int, retry: Sequence[Target] = ()) -> None:
        """At most `cap` pictures to a batch from now on; `retry`: a batch handed out that must run again."""
        if cap < self.batching.cap or retry:
            self.batching = Batching(min(cap, self.batching.cap), self.batching.mix_layers)
            self.pending = self._plan([*retry, *(t for batch in self.pending for t in batch)])
