"""The render queue's values (what a picture to render is, what a visitor sees) and rules (the round
robin order, the wait estimate, the number of workers); render_queue.py and service.py run them."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterator, Protocol, Sequence

from ..backends.work import CPU_BATCH
from ..config import THREADS_ENV, WORKERS_ENV, render_threads, render_workers  # noqa: F401 (env names)


@dataclass
class Update:
    """What a batch reports as it goes: steps each of its pictures has done, previews and results by key."""
    steps: int = 0
    previews: dict[str, Any] = field(default_factory=dict)
    finished: dict[str, Any] = field(default_factory=dict)


class Batcher(Protocol):
    """How one kind of picture renders (jobs.channels.ChannelBatcher; another page brings its own)."""
    key: Hashable  # items whose batchers have equal keys may share a batch
    mixes_visitors: bool  # whether a batch may take other visitors' pictures beyond the current turn

    def limit(self) -> int: ...  # the most items one batch may hold (asked once per key)

    def render(self, items: list["Item"]) -> Iterator[Update]: ...


@dataclass(frozen=True)
class Item:
    """One picture to render."""
    key: str  # the picture's cache key: equal keys are one render
    label: str
    steps: int  # optimization steps: progress, and the wait estimate's unit with the picture count
    batcher: Batcher = field(compare=False)
    payload: Any = field(default=None, compare=False)  # what the batcher needs (a Target)


@dataclass
class Snapshot:
    """A visitor's view of its pictures; a copy, safe to read while the service goes on."""
    results: dict[str, Any]  # key: result
    previews: dict[str, tuple[int, Any]]  # key: (update count, picture)
    errors: dict[str, str]  # key: message
    done_steps: int
    total_steps: int
    ahead: int  # pictures the service renders before this visitor's next one (0: its own are rendering)
    wait_s: float | None  # estimated seconds until all are done; None before anything was measured
    refused: int  # pictures over the visitor's cap, not queued
    open: int = 0  # pictures wanted with neither a result nor an error yet

    @property
    def finished(self) -> bool:
        return self.open == 0


TURN = CPU_BATCH  # pictures a visitor's turn may hold: one CPU batch


def interleave(lists: Sequence[Sequence[str]], turn: int = 1, used: int = 0) -> list[tuple[int, str]]:
    """Round robin over the visitors' lists (the next visitor first) in turns of up to `turn`
    pictures: the first `turn` pictures of each, then the next `turn` of each, and so on, as (list
    index, key); the first visitor with pictures has already had `used` pictures of its current turn. A key several
    visitors want is taken once, at its earliest place.

    Turns of a few pictures rather than one: 8 visitors of 4 pictures then see their views finish one
    after another (the first after an eighth of the work) instead of all at the very end, and a
    visitor's 32 pictures still hold back another's 4 by one turn at most."""
    order, taken, start = [], set(), [0] * len(lists)
    while any(start[i] < len(keys) for i, keys in enumerate(lists)):
        for index, keys in enumerate(lists):
            left = start[index] < len(keys)
            room = turn - used if left else turn
            used = 0 if left else used  # counts for the first visitor with pictures left only
            while room > 0 and start[index] < len(keys):
                key, start[index] = keys[start[index]], start[index] + 1
                if key not in taken:
                    taken.add(key)
                    order.append((index, key))
                    room -= 1
    return order


def wait_estimate(queued, running, rates: dict[Hashable, float], workers: int) -> float | None:
    """Seconds until the `queued` items (in order, up to the visitor's last) and the `running` ones
    ((item, steps done) pairs) are done, from measured seconds per picture-step by batcher key (a kind
    not yet measured takes the mean of the others). None before anything was measured."""
    if not rates:
        return None
    fallback = sum(rates.values()) / len(rates)

    def rate(item) -> float:
        return rates.get(item.batcher.key, fallback)

    work = sum(rate(i) * i.steps for i in queued) + sum(rate(i) * max(0, i.steps - done) for i, done in running)
    return work / max(1, workers)


CPU_WORKERS_MAX = 4  # each worker's batches are sized to the free memory as if alone


def usable_cores() -> int:
    """The cores this process may run on: a server pinned to some (taskset, a container's cpuset)
    sizes its workers to those, not to the machine."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers() -> int:
    """FEATVIZ_RENDER_WORKERS, read at call time; else one per GPU, or on a CPU one single-threaded
    worker per core (up to CPU_WORKERS_MAX). bench/load.py, 8 visitors of 8 different views on 2 cores:
    2 single-threaded workers took 52 s, 1 worker using both cores 78 s (the views one after another:
    61 s); the atlas's single-threaded workers make the same pictures, bit for bit."""
    chosen = render_workers()
    if chosen is not None:
        return chosen
    import torch

    gpus = torch.cuda.device_count()
    # A GPU server's model lives on one device: one worker for it (several would share it and its memory).
    return 1 if gpus else max(1, min(CPU_WORKERS_MAX, usable_cores()))


def threads_per_worker(workers: int) -> int | None:
    """FEATVIZ_RENDER_THREADS, read at call time; else the cores shared out among several workers, or
    None: one worker keeps torch's own default (every physical core)."""
    chosen = render_threads()
    if chosen is not None:
        return chosen
    return max(1, usable_cores() // workers) if workers > 1 else None


def share_cores(workers: int) -> None:
    """Called by each worker thread on a CPU: torch's thread count (one for the whole process)."""
    import torch

    threads = threads_per_worker(workers)
    if threads and not torch.cuda.is_available() and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


RENDER_NICENESS = 10  # added to the server's own niceness


def yield_to_pages() -> None:
    """Called by each worker thread: renders are batch work, so the worker runs at a lower priority
    than the web server and the sessions' scripts (Linux lets a thread lower its own). A page load or
    a widget change then gets the cores it needs while the workers keep them busy, instead of
    waiting behind a render."""
    if not hasattr(os, "setpriority"):
        return
    me = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + RENDER_NICENESS))
    except OSError:  # not allowed here: renders run at the server's priority
        pass
