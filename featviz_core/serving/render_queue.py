"""The render service's bookkeeping (service.py runs the workers): what every visitor wants, the
order workers take pictures in, what each batch has done and who gets its results. Every method that
reads or changes the state holds `_lock`.

Pictures are deduplicated by key (two visitors wanting one picture get one render) and taken round
robin between visitors, in turns of up to `queueing.TURN` pictures, so one visitor's 32 pictures do
not hold back another's 4. A picture nobody wants any more (the view changed, or its visitor has not
polled for ABANDONED_AFTER_S) leaves the queue.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any, Hashable, Sequence

from .queueing import TURN, Batcher, Item, Snapshot, Update, interleave, wait_estimate

ABANDONED_AFTER_S = 15.0  # a visitor silent this long has gone (closed tab, other page)
KINDS_REMEMBERED = 256  # batch sizes and rates kept, by batcher key (model, settings, layer), newest last


def remember(table: dict, key: Hashable, value) -> None:
    """table[key] = value, forgetting the oldest entries past KINDS_REMEMBERED: links choose the
    settings, so the kinds of pictures a public server sees have no end."""
    table.pop(key, None)
    table[key] = value
    while len(table) > KINDS_REMEMBERED:
        del table[next(iter(table))]


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


class RenderQueue:
    """Visitors' pictures, queued and running, for `workers` worker threads (the wait estimate's divisor)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._lock = threading.Condition()
        self._entries: dict[str, _Entry] = {}  # queued and running pictures, by key
        self._visitors: dict[str, _Visitor] = {}
        self._rotation: list[str] = []  # visitors in round robin order, the next first
        self._turn: tuple[str, int] = ("", 0)  # the visitor whose turn it is, and pictures it has had in it
        self._limits: dict[Hashable, int] = {}
        self._rates: dict[Hashable, float] = {}  # measured seconds per picture-step, by batcher key

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

    # --- batches --------------------------------------------------------------------------------
    def _take(self, visitor: str, first: str, batcher: Batcher, limit: int) -> list[Item]:
        """The batch that starts with `first` (the next picture of `visitor`), marked as running;
        [] when another worker took that picture meanwhile."""
        with self._lock:
            order = self._queued_order()
            if not order or order[0] != (visitor, first):  # another worker took it meanwhile: ask again
                return []
            turn = list(takewhile(lambda entry: entry[0] == visitor, order))  # what is left of its turn
            pool = order if batcher.mixes_visitors else turn
            same = [self._entries[k].item for _, k in pool]
            batch = [item for item in same if item.batcher.key == batcher.key][:limit]
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

    def _finish(self, batch: list[Item], stopped: bool, error: str | None) -> None:
        """A batch has ended: requeue what is wanted again after it stopped, report what never came back."""
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

    def _deliver(self, key: str, results: Any = None, errors: str | None = None) -> None:
        for v in self._visitors.values():
            if key in v.wanted:
                if errors is None:
                    v.results[key] = results
                else:
                    v.errors[key] = errors
