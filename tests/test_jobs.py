"""Render jobs (featviz_ui/jobs.py) on the tiny model and a real store: a rerun or a second visitor
attaches to the job in flight instead of starting over; a job nobody watches stops; errors reach the
watcher. A gate on the model's forward pass holds a job mid-render while the test acts."""
from __future__ import annotations

import contextlib
import threading
import time

import pytest

from featviz_core import RenderSettings, Target
from featviz_core.spec import RenderSpec
from featviz_ui import jobs

pytestmark = pytest.mark.usefixtures("single_thread")

SETTINGS = RenderSettings(size=32, steps=6)


@contextlib.contextmanager
def gate(model):
    """Every forward pass waits until the gate opens (a render held at its first step)."""
    opened = threading.Event()
    handle = model.module.register_forward_pre_hook(lambda _m, _i: None if opened.wait(timeout=60) else None)
    try:
        yield opened
    finally:
        opened.set()
        handle.remove()


def request(model, store, pairs):
    targets = [Target(layer, c) for layer, c in pairs]
    keys = frozenset(RenderSpec(model.name, model.digest, t.layer, t.channel, SETTINGS).key() for t in targets)
    return keys, lambda: jobs.RenderJob(model, targets, SETTINGS, store, keys)


def wait(job, watcher: str, timeout: float = 60) -> jobs.JobState:
    deadline = time.monotonic() + timeout
    while not (state := job.poll(watcher)).finished:
        assert time.monotonic() < deadline, "job never finished"
        time.sleep(0.02)
    return state


def never():
    raise AssertionError("a second job was started")


def test_a_rerun_and_a_second_visitor_attach_to_the_job_in_flight(tiny, store, monkeypatch):
    calls = []
    real = jobs.render_channels
    monkeypatch.setattr(jobs, "render_channels", lambda *a, **k: calls.append(1) or real(*a, **k))
    pairs = [("conv2", 0), ("conv2", 1), ("relu3", 0), ("relu3", 1)]
    keys, make = request(tiny, store, pairs)
    with gate(tiny) as opened:
        job = jobs.job_for("session-a", keys, make)
        subset, _ = request(tiny, store, pairs[2:])  # the rerun: the first two came from the cache meanwhile
        assert jobs.job_for("session-a", subset, never) is job
        assert jobs.job_for("session-b", keys, never) is job  # another visitor of the same link
        opened.set()
        state = wait(job, "session-b")
    assert state.error is None and sorted(state.results) == sorted(f"{l}:{c}" for l, c in pairs)
    assert all(store.get(k) is not None for k in keys)
    assert calls == [1]  # one render for all three
    assert job not in jobs.running_jobs()
    # Ended jobs take no new watchers: the same request later starts afresh (and hits the cache).
    assert jobs.job_for("session-a", keys, make) is not job


def test_a_job_stops_once_its_only_watcher_asks_for_something_else(tiny, store):
    first_keys, make_first = request(tiny, store, [("relu3", 2), ("relu3", 3)])
    other_keys, make_other = request(tiny, store, [("conv2", 4)])
    with gate(tiny) as opened:
        first = jobs.job_for("session-a", first_keys, make_first)
        other = jobs.job_for("session-a", other_keys, make_other)  # a widget change: a new view
        assert other is not first
        opened.set()
        first.join(timeout=60)  # polling it would make the poller a watcher
        done = wait(other, "session-a")
    stopped = first.poll("after the end")
    assert stopped.results == {} and stopped.done_steps < stopped.total_steps
    assert all(store.get(k) is None for k in first_keys)
    assert list(done.results) == ["conv2:4"] and done.error is None


def test_a_job_stops_once_its_only_watcher_moves_to_a_view_that_is_all_cached(tiny, store):
    keys, make = request(tiny, store, [("relu3", 7)])
    with gate(tiny) as opened:
        job = jobs.job_for("session-a", keys, make)
        jobs.release_all("session-a")  # what rendering.render does when nothing is missing
        opened.set()
        job.join(timeout=60)
    assert job.poll("after the end").results == {} and all(store.get(k) is None for k in keys)


def test_a_job_released_by_its_last_watcher_stops(tiny, store):
    """conv2's batch runs first (shallow first, and its passes stop before conv3); relu3's batch is held
    at conv3 until both watchers have released the job, which must then end without it."""
    keys, make = request(tiny, store, [("conv2", 5), ("relu3", 5)])
    opened, conv3_calls = threading.Event(), []

    def hold_relu3_batch(_module, _inputs):
        conv3_calls.append(1)
        if len(conv3_calls) > 1:  # the first is the batch-size probe
            opened.wait(timeout=60)

    handle = tiny.module.conv3.register_forward_pre_hook(hold_relu3_batch)
    try:
        job = jobs.job_for("session-a", keys, make)
        jobs.job_for("session-b", keys, never)
        job.release("session-a")  # session-b still watches: the job goes on
        while not (state := job.poll("session-b")).results:
            time.sleep(0.01)
        job.release("session-b")
        opened.set()
        job.join(timeout=60)
    finally:
        opened.set()
        handle.remove()
    assert list(state.results) == ["conv2:5"]
    assert list(job.poll("after the end").results) == ["conv2:5"]
    assert [store.get(k) is not None for k in sorted(keys)].count(True) == 1


def test_a_job_abandoned_by_every_watcher_stops(tiny, store, monkeypatch):
    monkeypatch.setattr(jobs, "ABANDONED_AFTER_S", 0.2)
    keys, make = request(tiny, store, [("relu3", 4)])
    with gate(tiny) as opened:
        job = jobs.job_for("closed-tab", keys, make)
        time.sleep(0.3)  # no polls: the tab was closed
        opened.set()
        job.join(timeout=60)
    assert not job._thread.is_alive()
    state = job.poll("late")
    assert state.finished and state.results == {}


def test_a_failing_render_reports_its_error_to_the_watcher(tiny, store):
    keys, make = request(tiny, store, [("relu3", 99)])
    state = wait(jobs.job_for("session-a", keys, make), "session-a")
    assert state.finished and state.results == {}
    assert "relu3" in state.error and "99" in state.error
