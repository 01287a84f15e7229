"""Renders that outlive a script run.

Any widget change reruns the page script and abandons what it was doing. A render run inside the
script lost its unfinished batch each time (about 10 s of CPU at 224 px), for instance when someone
pressed Inspect on a finished tile while the others were still forming. So a render runs in a thread
of its own as a RenderJob. The next run of the script, or another visitor of the same link, attaches
to a job that still covers everything it is missing; a job that nobody watches any more stops at its
next step (finished batches are already in the store).

No Streamlit here: the pages name themselves as watchers (`rendering.py`).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from featviz_core import ChannelResult, FeatvizError, LoadedModel, Progress, RenderSettings, Store, render_channels
from featviz_core.objectives import Target

ABANDONED_AFTER_S = 15.0  # a watcher silent this long has gone (closed tab, other page)

_LOCK = threading.Lock()  # guards every job's state and the registry; held only for bookkeeping
_JOBS: list["RenderJob"] = []
_LOG = logging.getLogger(__name__)


@dataclass
class JobState:
    """What a watcher draws: a copy, safe to read while the job goes on."""
    done_steps: int = 0
    total_steps: int = 0
    results: dict[str, ChannelResult] = field(default_factory=dict)
    previews: dict[str, tuple[int, np.ndarray]] = field(default_factory=dict)  # label: (update count, picture)
    error: str | None = None
    finished: bool = False


class RenderJob:
    """render_channels for `targets` in a daemon thread; `keys` are the targets' cache keys. `events`
    replaces render_channels with another source of Progress events (the Dream page's dreams)."""

    def __init__(self, model: LoadedModel, targets: Sequence[Target], settings: RenderSettings, store: Store,
                 keys: frozenset[str], events: Callable[[], Iterator[Progress]] | None = None):
        self.keys = keys
        self._request = (model, [(t.layer, t.channel) for t in targets], settings, store)
        self._events = events or (lambda: render_channels(model, self._request[1], settings, store, previews=True))
        self._state = JobState()
        self._watchers: dict[str, float] = {}  # watcher id: time of its last poll
        self._thread = threading.Thread(target=self._run, name="featviz-render", daemon=True)

    def poll(self, watcher: str) -> JobState:
        with _LOCK:
            self._watchers[watcher] = time.monotonic()
            s = self._state
            return JobState(s.done_steps, s.total_steps, dict(s.results), dict(s.previews), s.error, s.finished)

    def release(self, watcher: str) -> None:
        """The watcher has all it wanted (or wants something else): without other watchers the job stops."""
        with _LOCK:
            self._watchers.pop(watcher, None)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _wanted(self) -> bool:
        now = time.monotonic()
        return any(now - seen < ABANDONED_AFTER_S for seen in self._watchers.values())

    def _run(self) -> None:
        error = None
        try:
            for event in self._events():
                with _LOCK:
                    s = self._state
                    if event.total_steps:
                        s.done_steps, s.total_steps = event.done_steps, event.total_steps
                    for label, picture in event.preview:
                        s.previews[label] = (s.previews.get(label, (0, None))[0] + 1, picture)
                    for result in event.finished:
                        s.results[result.label] = result
                    if not self._wanted():
                        _JOBS.remove(self)  # in the same locked step: nobody attaches to a job that stops
                        break
        except FeatvizError as exc:
            error = str(exc)
        except Exception as exc:  # a thread's exception would otherwise vanish: the watcher shows it
            _LOG.exception("render job failed")
            error = f"Rendering failed: {type(exc).__name__}: {exc}"
        finally:
            with _LOCK:
                self._state.error, self._state.finished = error, True
                if self in _JOBS:
                    _JOBS.remove(self)


def job_for(watcher: str, keys: frozenset[str], make) -> RenderJob:
    """The job that renders `keys` for `watcher`: a running one that covers them all, else `make()`,
    started. The watcher stops watching every other job (a view has one render at a time)."""
    with _LOCK:
        job = next((j for j in _JOBS if keys <= j.keys), None)  # the registry holds running jobs only
        if job is not None:
            job._watchers[watcher] = time.monotonic()
    if job is None:
        job = make()  # outside the lock: it may load a model
        with _LOCK:
            job._watchers[watcher] = time.monotonic()  # before it starts, or it would stop at once
            _JOBS.append(job)
        job._thread.start()
    release_all(watcher, keep=job)
    return job


def release_all(watcher: str, keep: RenderJob | None = None) -> None:
    """The watcher's view needs no job (but `keep`): jobs only it watched stop at their next step."""
    for job in running_jobs():
        if job is not keep:
            job.release(watcher)


def running_jobs() -> list[RenderJob]:
    with _LOCK:
        return list(_JOBS)
