"""The render service: one queue per server process (render_queue.py), fed by every visitor, served
by a fixed number of worker threads.

A visitor (a browser session) says which pictures its view wants (`want`) and polls for them
(`poll`). A worker takes the next picture in the queue's order and fills its batch with the
compatible pictures that follow it (the same `Batcher.key`: model and settings, on a CPU also the
layer): on a CPU only from the same turn, since there a fuller batch takes longer and its visitor
would wait for other visitors' pictures; on a GPU, where it costs about the same, from anyone's. A
batch nobody wants any more stops at its next step.

Generic over what a picture is: an `Item` carries its `Batcher`, which renders a list of compatible
items (jobs/channels.py renders channel pictures and dreams). No Streamlit here.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Sequence

from ..errors import FeatvizError
from .queueing import Batcher, Item, Snapshot, Update, default_workers, share_cores, threads_per_worker, yield_to_pages
from .render_queue import RenderQueue

__all__ = ["Batcher", "Item", "RenderService", "Snapshot", "Update"]

_LOG = logging.getLogger(__name__)


class RenderService(RenderQueue):
    def __init__(self, workers: int | None = None):
        super().__init__(workers or default_workers())
        threads_per_worker(self.workers)  # a bad FEATVIZ_RENDER_THREADS says so here, not in a worker
        self._threads: list[threading.Thread] = []
        self._closed = False

    def want(self, visitor: str, items: Sequence[Item], cap: int | None = None) -> None:
        """The visitor's view wants `items` (and nothing else it asked for before): those not queued
        are queued, up to `cap`; its other pictures are withdrawn."""
        super().want(visitor, items, cap)
        with self._lock:
            self._start_workers()

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
        return self._take(visitor, first, batcher, limit)

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
            error = f"Rendering failed ({type(exc).__name__}; the server's log has the details)."  # no paths
        finally:
            self._close(updates)
            self._finish(batch, stopped, error)

    @staticmethod
    def _close(updates) -> None:
        """Ends a batch's generator; a failure there must not keep its pictures marked as running."""
        try:
            getattr(updates, "close", lambda: None)()
        except Exception:
            _LOG.exception("closing a render batch failed")

    def close(self) -> None:
        """Workers end after their batch in flight (tests; a server's service lives as long as it)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)

    def thread_count(self) -> int:
        return sum(t.is_alive() for t in self._threads)
