"""Render work through the service (featviz_core/serving/service.py) on the tiny model and a real store: a
rerun or a second visitor joins the render in flight instead of starting over; work nobody watches
stops; errors reach the watcher. A gate on the model's forward pass holds a batch mid-render while the
test acts."""
from __future__ import annotations

import contextlib
import threading
import time

import pytest

from featviz_core import RenderSettings, Target
from featviz_core.jobs import channels
from featviz_core.serving import render_queue
from featviz_core.serving.service import RenderService, Snapshot

pytestmark = pytest.mark.usefixtures("single_thread")

SETTINGS = RenderSettings(size=32, steps=6)


@contextlib.contextmanager
def gate(model, skip: int = 0):
    """Every forward pass but the first `skip` waits until the gate opens (a render held at its first
    step; skip=1 lets the batch-size probe through)."""
    opened, passes = threading.Event(), []

    def hold(_module, _inputs):
        passes.append(1)
        if len(passes) > skip:
            opened.wait(timeout=60)

    handle = model.module.register_forward_pre_hook(hold)
    try:
        yield opened
    finally:
        opened.set()
        handle.remove()


def items(model, store, pairs):
    return channels.channel_items(model, [Target(layer, c) for layer, c in pairs],
                                  channels.channel_kind(model, SETTINGS, store))


def wait(service: RenderService, visitor: str, *others: str, timeout: float = 60) -> Snapshot:
    """Polls `visitor` until its pictures are done; `others` are polled meanwhile, as their pages would
    (a visitor silent for ABANDONED_AFTER_S has gone)."""
    deadline = time.monotonic() + timeout
    while not (state := service.poll(visitor)).finished:
        assert time.monotonic() < deadline, "the pictures never finished"
        for other in others:
            service.poll(other)
        time.sleep(0.02)
    return state


def idle(service: RenderService, timeout: float = 60) -> None:
    """Until no batch runs (polling would make the poller a watcher)."""
    deadline = time.monotonic() + timeout
    while service._entries:
        assert time.monotonic() < deadline, "the service never went idle"
        time.sleep(0.02)


@pytest.fixture
def service():
    s = RenderService(workers=1)
    yield s
    s.close()


@pytest.fixture
def renders(monkeypatch):
    calls = []
    real = channels.render_channels
    monkeypatch.setattr(channels, "render_channels", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_a_rerun_and_a_second_visitor_join_the_render_in_flight(tiny, store, service, renders):
    pairs = [("conv2", 0), ("conv2", 1)]
    wanted = items(tiny, store, pairs)
    with gate(tiny, skip=1) as opened:  # skip: the batch-size probe
        service.want("session-a", wanted)
        while not all(service._entries[i.key].running for i in wanted):  # in flight, held at its first step
            time.sleep(0.01)
        service.want("session-a", wanted[1:])  # the rerun: the first came from the cache meanwhile
        service.want("session-b", wanted)  # another visitor of the same link
        opened.set()
        a, b = wait(service, "session-a", "session-b"), wait(service, "session-b")
    assert sorted(b.results) == sorted(i.key for i in wanted) and list(a.results) == [wanted[1].key]
    assert all(store.get(i.key) is not None for i in wanted)
    assert renders == [1]  # one render for all three


def test_work_stops_once_its_only_watcher_asks_for_something_else(tiny, store, service):
    first = items(tiny, store, [("relu3", 2), ("relu3", 3)])
    other = items(tiny, store, [("conv2", 4)])
    with gate(tiny) as opened:
        service.want("session-a", first)
        service.want("session-a", other)  # a widget change: a new view
        opened.set()
        done = wait(service, "session-a")
    assert all(store.get(i.key) is None for i in first)
    assert list(done.results) == [other[0].key] and not done.errors


def test_work_stops_once_its_only_watcher_moves_to_a_view_that_is_all_cached(tiny, store, service):
    wanted = items(tiny, store, [("relu3", 7)])
    with gate(tiny) as opened:
        service.want("session-a", wanted)
        service.release("session-a")  # what rendering.render does when nothing is missing
        opened.set()
        idle(service)
    assert store.get(wanted[0].key) is None


def test_work_released_by_its_last_watcher_stops(tiny, store, service):
    """conv2's batch runs first (visitors' order); relu3's batch is held at conv3 until both watchers
    have released it, which must then end without it."""
    wanted = items(tiny, store, [("conv2", 5), ("relu3", 5)])
    opened, conv3_calls = threading.Event(), []

    def hold_relu3_batch(_module, _inputs):
        conv3_calls.append(1)
        if len(conv3_calls) > 1:  # the first is the batch-size probe
            opened.wait(timeout=60)

    handle = tiny.module.conv3.register_forward_pre_hook(hold_relu3_batch)
    try:
        service.want("session-a", wanted)
        service.want("session-b", wanted)
        service.release("session-a")  # session-b still watches: the work goes on
        while not (state := service.poll("session-b")).results:
            time.sleep(0.01)
        service.release("session-b")
        opened.set()
        idle(service)
    finally:
        opened.set()
        handle.remove()
    assert list(state.results) == [wanted[0].key]
    assert store.get(wanted[0].key) is not None and store.get(wanted[1].key) is None


class QueueClock:
    """The render queue's clock, moved by the test: a visitor falls silent for exactly as long as the
    test says, however slow the machine (no sleep racing the limit)."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize("silent_for, stops", [(render_queue.ABANDONED_AFTER_S, True),
                                               (render_queue.ABANDONED_AFTER_S - 0.5, False)])
def test_work_abandoned_by_every_watcher_stops(tiny, store, service, monkeypatch, silent_for, stops):
    clock = QueueClock()
    monkeypatch.setattr(render_queue, "time", clock)
    wanted = items(tiny, store, [("relu3", 4), ("conv2", 3)])
    with gate(tiny) as opened:
        service.want("closed-tab", wanted)
        clock.now += silent_for  # no polls meanwhile: the tab was closed (or not yet long enough)
        opened.set()
        idle(service)
    assert [store.get(i.key) is None for i in wanted] == [stops, stops]
    assert (service.poll("closed-tab").results == {}) == stops


def test_a_failing_render_reports_its_error_to_the_watcher(tiny, store, service):
    service.want("session-a", items(tiny, store, [("relu3", 99)]))
    state = wait(service, "session-a")
    assert state.finished and state.results == {}
    (error,) = state.errors.values()
    assert "relu3" in error and "99" in error
