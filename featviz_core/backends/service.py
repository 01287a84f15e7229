"""The render service: one queue per server process, fed by every visitor, served by a fixed number of
worker threads.

A visitor (a browser session) says which pictures its view wants (`want`) and polls for them
(`poll`). Pictures are deduplicated by key (two visitors wanting one picture get one render) and taken
round robin between visitors, in turns of up to `queueing.TURN` pictures, so one visitor's 32
pictures do not hold back another's 4. A worker takes the next picture in that order and fills its
batch with the compatible pictures that follow it (the same `Batcher.key`: model and settings, on a
CPU also the layer): on a CPU only from the same turn, since there a fuller batch takes longer and
its visitor would wait for other visitors' pictures; on a GPU, where it costs about the same, from
anyone's. A
picture nobody wants any more (the view changed, or its visitor has not polled for ABANDONED_AFTER_S)
leaves the queue, and a batch nobody wants stops at its next step.

Generic over what a picture is: an `Item` carries its `Batcher`, which renders a list of compatible
items (`channels.py` renders channel pictures). No Streamlit here.
"""
from __future__ import annotations

import logging
import threading
import time
from itertools import takewhile
from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

from ..errors import FeatvizError
from .queueing import (TURN, Batcher, Item, Snapshot, Update, default_workers, interleave, share_cores,
                       threads_per_worker, wait_estimate, yield_to_pages)

__all__ = ["Batcher", "Item", "RenderService", "Snapshot", "Update"]

ABANDONED_AFTER_S = 15.0  # a visitor silent this long has gone (closed tab, other page)
KINDS_REMEMBERED = 256  # batch sizes and rates kept, by batcher key (model, settings, layer), newest last


def remember(table: dict, key: Hashable, value) -> None:
    """table[key] = value, forgetting the oldest entries past KINDS_REMEMBERED: links choose the
    settings, so the kinds of pictures a public server sees have no end."""
    table.pop(key, None)
    table[key] = value
    while len(table) > KINDS_REMEMBERED:
        del table[next(iter(table))]
_LOG = logging.getLogger(__name__)


@dataclass
class _Entry:
    item: Item
    running: bool = False
    steps: int = 0
    preview: tuple[int, Any] | None = None


@dataclass
class _Visitor:
    wanted: dict[str, Item]  # in the visitor's order
    seen: float
    refused: int = 0
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class RenderService:
    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()
        threads_per_worker(self.workers)  # a bad FEATVIZ_RENDER_THREADS says so here, not in a worker
        self._lock = threading.Condition()
        self._entries: dict[str, _Entry] = {}  # queued and running pictures, by key
        self._visitors: dict[str, _Visitor] = {}
        self._rotation: list[str] = []  # visitors in round robin order, the next first
        self._turn: tuple[str, int] = ("", 0)  # the visitor whose turn it is, and pictures it has had in it
        self._limits: dict[Hashable, int] = {}
        self._rates: dict[Hashable, float] = {}  # measured seconds per picture-step, by batcher key
        self._threads: list[threading.Thread] = []
        self._closed = False

    # --- visitors -------------------------------------------------------------------------------
    def want(self, visitor: str, items: Sequence[Item], cap: int | None = None) -> None:
        """The visitor's view wants `items` (and nothing else it asked for before): those not queued
        are queued, up to `cap`; its other pictures are withdrawn."""
        with self._lock:
            previous = self._visitors.get(visitor)
            wanted = {i.key: i for i in items}
            refused = max(0, len(wanted) - cap) if cap is not None else 0
            wanted = dict(list(wanted.items())[:len(wanted) - refused])
            kept = {k: r for k, r in previous.results.items() if k in wanted} if previous else {}
            self._visitors[visitor] = _Visitor(wanted, time.monotonic(), refused, kept)  # errors: a rerun retries
            if visitor not in self._rotation:
                self._rotation.append(visitor)
            for key, item in wanted.items():
                if key not in self._entries and key not in self._visitors[visitor].results:
                    self._entries[key] = _Entry(item)
            self._drop_unwanted()
            self._start_workers()
            self._lock.notify_all()

    def poll(self, visitor: str) -> Snapshot:
        with self._lock:
            v = self._visitors.get(visitor)
            if v is None:
                return Snapshot({}, {}, {}, 0, 0, 0, None, 0)
            v.seen = time.monotonic()
            done = total = still_open = 0
            previews = {}
            for key, item in v.wanted.items():
                total += item.steps
                entry = self._entries.get(key)
                if key in v.results or key in v.errors:
                    done += item.steps
                    continue
                still_open += 1
                if entry is not None:
                    done += entry.steps
                    if entry.preview is not None:
                        previews[key] = entry.preview
            ahead, wait = self._place(visitor)
            return Snapshot(dict(v.results), previews, dict(v.errors), done, total, ahead, wait, v.refused, still_open)

    def release(self, visitor: str) -> None:
        """The visitor wants nothing (its view is all cached, or it left)."""
        with self._lock:
            if self._visitors.pop(visitor, None) is not None:
                self._rotation.remove(visitor)
                self._drop_unwanted()

    # --- bookkeeping (under the lock) -----------------------------------------------------------
    def _wanted_keys(self) -> set[str]:
        now = time.monotonic()
        for name in [n for n, v in self._visitors.items() if now - v.seen >= ABANDONED_AFTER_S]:
            del self._visitors[name]
            self._rotation.remove(name)
        return {k for v in self._visitors.values() for k in v.wanted if k not in v.results and k not in v.errors}

    def _drop_unwanted(self) -> None:
        """Queued pictures nobody wants leave the queue (running ones stop at their batch's next step)."""
        wanted = self._wanted_keys()
        for key in [k for k, e in self._entries.items() if not e.running and k not in wanted]:
            del self._entries[key]

    def _queued_order(self) -> list[tuple[str, str]]:
        """(visitor, key) of every queued picture in the order the workers take them."""
        lists = [[k for k in self._visitors[n].wanted if k in self._entries and not self._entries[k].running]
                 for n in self._rotation]
        first = next((name for name, keys in zip(self._rotation, lists) if keys), None)
        used = self._turn[1] if first == self._turn[0] else 0
        return [(self._rotation[i], key) for i, key in interleave(lists, TURN, used)]

    def _place(self, visitor: str) -> tuple[int, float | None]:
        order = self._queued_order()
        mine = [i for i, (_, key) in enumerate(order) if key in self._visitors[visitor].wanted]
        running = [e for e in self._entries.values() if e.running]
        ahead = 0 if any(e.item.key in self._visitors[visitor].wanted for e in running) else \
            len(running) + (mine[0] if mine else 0)
        upto = [self._entries[key].item for _, key in order[:mine[-1] + 1]] if mine else []
        in_flight = [(e.item, e.steps) for e in running]
        return ahead, wait_estimate(upto, in_flight, self._rates, self.workers)

    # --- workers --------------------------------------------------------------------------------
    def _start_workers(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]  # a crashed worker is replaced
        while len(self._threads) < self.workers:
            thread = threading.Thread(target=self._work, name=f"featviz-render-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        share_cores(self.workers)
        yield_to_pages()
        while not self._closed:
            batch = self._next_batch()
            if batch:
                self._run(batch)

    def _next_batch(self) -> list[Item]:
        with self._lock:
            self._drop_unwanted()
            order = self._queued_order()
            if not order:
                if not self._closed:
                    self._lock.wait(timeout=1.0)  # the timeout: to drop the queue of visitors gone silent
                return []
            visitor, first = order[0]
            batcher = self._entries[first].item.batcher
        try:
            limit = self._limit(batcher)  # outside the lock: it may run a probe forward pass
        except Exception:  # the batch's render reports what is wrong to its watchers
            _LOG.exception("sizing a batch failed")
            limit = 1
        with self._lock:
            order = self._queued_order()
            if not order or order[0] != (visitor, first):  # another worker took it meanwhile: ask again
                return []
            turn = list(takewhile(lambda entry: entry[0] == visitor, order))  # what is left of its turn
            pool = order if batcher.mixes_visitors else turn
            batch = [self._entries[k].item for _, k in pool if self._entries[k].item.batcher.key == batcher.key][:limit]
            for item in batch:
                self._entries[item.key].running = True
            taken = sum(self._entries[k].running for _, k in turn)
            if taken < len(turn):
                self._turn = (visitor, (self._turn[1] if self._turn[0] == visitor else 0) + taken)
            else:  # its turn is over
                self._rotation.remove(visitor)
                self._rotation.append(visitor)
                self._turn = ("", 0)
            return batch

    def _limit(self, batcher: Batcher) -> int:
        if batcher.key not in self._limits:
            remember(self._limits, batcher.key, max(1, batcher.limit()))
        return self._limits[batcher.key]

    def _run(self, batch: list[Item]) -> None:
        start, error, stopped = time.monotonic(), None, False
        updates = batch[0].batcher.render(batch)
        try:
            for update in updates:
                if not self._apply(batch, update, time.monotonic() - start):
                    stopped = True  # nobody wants this batch any more; finished pictures are already stored
                    break
        except FeatvizError as exc:
            error = str(exc)
        except Exception as exc:  # a thread's exception would otherwise vanish: the watchers show it
            _LOG.exception("render batch failed")
            error = f"Rendering failed ({type(exc).__name__}; the server's log has the details)."  # no paths to visitors
        finally:
            self._close(updates)
            with self._lock:
                wanted = self._wanted_keys()
                for item in batch:
                    entry = self._entries.get(item.key)
                    if entry is not None and item.key in wanted and stopped and not error:
                        self._entries[item.key] = _Entry(item)  # wanted again after the batch stopped: requeue
                    elif self._entries.pop(item.key, None) is not None and (error or not stopped):
                        # A batch that ended without this picture would be requeued forever: say so instead.
                        self._deliver(item.key, errors=error or f"No picture came back for {item.label}.")
                self._lock.notify_all()

    @staticmethod
    def _close(updates) -> None:
        """Ends a batch's generator; a failure there must not keep its pictures marked as running."""
        try:
            getattr(updates, "close", lambda: None)()
        except Exception:
            _LOG.exception("closing a render batch failed")

    def _apply(self, batch: list[Item], update: Update, elapsed: float) -> bool:
        """Records an update; False when no picture of the batch is wanted any more."""
        with self._lock:
            for item in batch:
                entry = self._entries.get(item.key)
                if entry is None:
                    continue
                entry.steps = max(entry.steps, update.steps)
                if item.key in update.previews:
                    entry.preview = ((entry.preview or (0,))[0] + 1, update.previews[item.key])
                if item.key in update.finished:
                    entry.steps = item.steps
                    self._deliver(item.key, results=update.finished[item.key])
                    del self._entries[item.key]
            if update.steps:
                remember(self._rates, batch[0].batcher.key, elapsed / (update.steps * len(batch)))
            wanted = self._wanted_keys()
            return any(item.key in wanted for item in batch if item.key in self._entries)

    def _deliver(self, key: str, results: Any = None, errors: str | None = None) -> None:
        for v in self._visitors.values():
            if key in v.wanted:
                if errors is None:
                    v.results[key] = results
                else:
                    v.errors[key] = errors

    def close(self) -> None:
        """Workers end after their batch in flight (tests; a server's service lives as long as it)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)

    def thread_count(self) -> int:
        return sum(t.is_alive() for t in self._threads)
