"""The render service (featviz_core/serving/service.py) on the tiny model and a real store: one render per
picture however many visitors want it, round robin between visitors, the per-visitor cap, a fixed
number of threads, place in the queue and wait, errors reaching the watcher. A gate on the model's
forward pass holds a batch mid-render while the test acts (tests/test_jobs.py has the same gate)."""
from __future__ import annotations

import os
import threading
import time

import pytest

from featviz_core.errors import FeatvizError
from featviz_core.jobs import channels
from featviz_core.serving.queueing import default_workers, interleave, threads_per_worker, wait_estimate
from featviz_core.serving.service import Item, RenderService
from tests.test_jobs import gate, items, service, wait  # noqa: F401  (service: a fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def batches(monkeypatch):
    """The labels of every batch rendered, in order."""
    seen: list[list[str]] = []
    real = channels.ChannelBatcher.render

    def recording(self, batch):
        seen.append([i.label for i in batch])
        return real(self, batch)

    monkeypatch.setattr(channels.ChannelBatcher, "render", recording)
    return seen


def test_two_visitors_of_one_picture_get_one_render(tiny, store, service, batches):
    wanted = items(tiny, store, [("conv2", 0), ("conv2", 1)])
    with gate(tiny) as opened:
        service.want("a", wanted)
        service.want("b", list(reversed(wanted)))
        opened.set()
        a, b = wait(service, "a", "b"), wait(service, "b")
    assert batches == [["conv2:0", "conv2:1"]]
    assert sorted(a.results) == sorted(b.results) == sorted(i.key for i in wanted)
    assert all(store.get(i.key) is not None for i in wanted)


def test_visitors_take_turns_so_a_long_view_does_not_hold_back_a_short_one(tiny, store, service, batches):
    """A's 16 pictures form two batches of 8 (same layer); B's 2 come between them, not after."""
    many = items(tiny, store, [("conv2", c) for c in range(16)])
    few = items(tiny, store, [("relu3", 0), ("relu3", 1)])
    with gate(tiny) as opened:
        service.want("a", many)
        service.want("b", few)
        opened.set()
        wait(service, "b", "a")
        wait(service, "a")
    assert [len(b) for b in batches] == [8, 2, 8]
    assert batches[1] == ["relu3:0", "relu3:1"]


def test_round_robin_takes_one_picture_of_each_visitor_in_turn_and_each_picture_once():
    assert interleave([["a1", "a2", "a3"], ["b1"], ["c1", "a2"]]) == \
        [(0, "a1"), (1, "b1"), (2, "c1"), (0, "a2"), (0, "a3")]


def test_turns_hold_several_pictures_and_the_first_visitor_may_have_had_some_of_its_own():
    lists = [["a1", "a2", "a3"], ["b1", "b2", "b3"], ["c1", "a2"]]
    assert interleave(lists, turn=2) == \
        [(0, "a1"), (0, "a2"), (1, "b1"), (1, "b2"), (2, "c1"), (0, "a3"), (1, "b3")]
    # 'a' had one picture of this turn already; a visitor with nothing queued does not hold the turn
    assert interleave([[]] + lists, turn=2, used=1) == \
        [(1, "a1"), (2, "b1"), (2, "b2"), (3, "c1"), (3, "a2"), (1, "a3"), (2, "b3")]


def test_eight_visitors_of_a_few_pictures_each_finish_one_after_another(tiny, store, service, batches):
    """On a CPU a batch stays within its visitor's turn: with one worker, visitor 0's two layers are
    the first two batches and visitor 7's the last two, instead of every view finishing at the end."""
    views = {f"v{n}": items(tiny, store, [("conv2", 2 * n), ("relu3", 2 * n), ("conv2", 2 * n + 1)]) for n in range(8)}
    with gate(tiny) as opened:
        for visitor, wanted in views.items():
            service.want(visitor, wanted)
        opened.set()
        for visitor in views:
            wait(service, visitor, *views)
    assert batches == [[f"conv2:{2 * n}", f"conv2:{2 * n + 1}"] if half == 0 else [f"relu3:{2 * n}"]
                       for n in range(8) for half in (0, 1)]


def test_batches_take_other_visitors_pictures_where_the_batcher_mixes_visitors(service):
    """A GPU's batches fill from every visitor's turn (a fuller batch costs it about the same)."""
    class Mixing:
        key, mixes_visitors, seen = "gpu-like", True, []

        def limit(self):
            return 16

        def render(self, batch):
            from featviz_core.serving.service import Update
            Mixing.seen.append(sorted(i.key for i in batch))
            yield Update(1, finished={i.key: i.key for i in batch})

    mixing = Mixing()
    with service._lock:  # both visitors queue before a worker looks
        service.want("a", [Item(f"a{n}", f"a{n}", 1, mixing) for n in range(3)])
        service.want("b", [Item(f"b{n}", f"b{n}", 1, mixing) for n in range(2)])
    wait(service, "a", "b"), wait(service, "b")
    assert Mixing.seen == [["a0", "a1", "a2", "b0", "b1"]]


def test_the_cap_queues_only_the_first_pictures_and_says_how_many_were_refused(tiny, store, service, batches):
    wanted = items(tiny, store, [("conv2", c) for c in range(5)])
    service.want("a", wanted, cap=3)
    state = wait(service, "a")
    assert state.refused == 2 and sorted(state.results) == sorted(i.key for i in wanted[:3])
    assert batches == [["conv2:0", "conv2:1", "conv2:2"]]


def test_threads_stay_bounded_whatever_the_number_of_views(tiny, store, service):
    before = threading.active_count()
    with gate(tiny) as opened:
        for visitor in range(8):
            service.want(f"v{visitor}", items(tiny, store, [("relu3", visitor), ("conv2", visitor)]))
        time.sleep(0.2)
        assert threading.active_count() - before == 1 == service.thread_count()
        opened.set()
        everyone = [f"v{visitor}" for visitor in range(8)]
        states = [wait(service, visitor, *everyone) for visitor in everyone]
    assert all(len(s.results) == 2 and not s.errors for s in states)


def test_a_queued_visitor_sees_its_place_and_a_wait_once_a_batch_was_measured(tiny, store, service):
    first = items(tiny, store, [("conv2", 0), ("conv2", 1)])
    later = items(tiny, store, [("relu3", 0)])
    with gate(tiny, skip=1) as opened:
        service.want("a", first)
        while service.poll("a").done_steps == 0 and not service._entries[first[0].key].running:
            time.sleep(0.01)
        service.want("b", later)
        queued = service.poll("b")
        assert queued.ahead == 2 and queued.wait_s is None  # nothing measured yet
        opened.set()
        wait(service, "a", "b")
    measured = service._rates
    assert measured  # seconds per picture-step of conv2's batch
    wait(service, "b")


def test_the_wait_counts_queued_and_remaining_steps_at_their_measured_rate():
    class Kind:
        def __init__(self, key):
            self.key = key

    fast, slow = Kind("fast"), Kind("slow")
    queued = [Item("a", "a", 10, fast), Item("b", "b", 10, slow)]
    running = [(Item("c", "c", 10, fast), 4)]
    assert wait_estimate(queued, running, {"fast": 0.1}, workers=1) == pytest.approx(1.0 + 1.0 + 0.6)
    assert wait_estimate(queued, running, {"fast": 0.1, "slow": 0.3}, workers=2) == pytest.approx((1 + 3 + 0.6) / 2)
    assert wait_estimate(queued, running, {}, workers=1) is None


def test_workers_are_set_by_the_environment_at_call_time(monkeypatch):
    monkeypatch.setenv("FEATVIZ_RENDER_WORKERS", "3")
    assert default_workers() == 3 and RenderService().workers == 3
    monkeypatch.setenv("FEATVIZ_RENDER_WORKERS", "lots")
    with pytest.raises(FeatvizError, match="FEATVIZ_RENDER_WORKERS='lots' is not a whole number from 1 to 64"):
        default_workers()
    monkeypatch.delenv("FEATVIZ_RENDER_WORKERS")
    assert default_workers() == min(4, len(os.sched_getaffinity(0)))  # no GPU here: one single-threaded worker per core
    assert threads_per_worker(1) is None  # None: torch's default
    assert threads_per_worker(2) == max(1, len(os.sched_getaffinity(0)) // 2)
    monkeypatch.setenv("FEATVIZ_RENDER_THREADS", "1")
    assert threads_per_worker(1) == 1
    monkeypatch.setenv("FEATVIZ_RENDER_THREADS", "0")
    with pytest.raises(FeatvizError, match="FEATVIZ_RENDER_THREADS='0' is not a whole number from 1 to 256"):
        RenderService(workers=1)


def test_other_kinds_of_pictures_queue_beside_channels(tiny, store, service):
    """The service is generic: any batcher renders its items (a Deep Dream page queues its own)."""
    class Doubler:
        key, mixes_visitors = "doubler", False

        def limit(self):
            return 4

        def render(self, batch):
            from featviz_core.serving.service import Update
            yield Update(1, finished={i.key: i.payload * 2 for i in batch})

    doubler = Doubler()
    service.want("a", [Item(f"dream-{n}", f"dream-{n}", 1, doubler, n) for n in range(3)] +
                 items(tiny, store, [("conv2", 9)]))
    state = wait(service, "a")
    dreams = {k: v for k, v in state.results.items() if k.startswith("dream-")}
    assert dreams == {"dream-0": 0, "dream-1": 2, "dream-2": 4}
    assert len(state.results) == 4 and not state.errors



def test_a_batch_that_ends_without_a_picture_says_so_instead_of_rendering_it_again(service):
    class Forgetful:  # returns one of its two pictures (a batcher whose keys disagree with its items')
        key, mixes_visitors = "forgetful", False
        renders = 0

        def limit(self):
            return 4

        def render(self, batch):
            from featviz_core.serving.service import Update
            Forgetful.renders += 1
            yield Update(1, finished={batch[0].key: "done"})

    batcher = Forgetful()
    service.want("a", [Item("kept", "kept", 1, batcher), Item("lost", "lost", 1, batcher)])
    state = wait(service, "a")
    assert state.results == {"kept": "done"} and state.errors == {"lost": "No picture came back for lost."}
    assert Forgetful.renders == 1  # not queued again and again


def test_the_status_says_the_place_in_the_queue_and_the_wait():
    from featviz_core.serving.service import Snapshot
    from featviz_ui.rendering import queue_text

    queued = Snapshot({}, {}, {}, done_steps=0, total_steps=192, ahead=12, wait_s=41.4, refused=0, open=2)
    assert queue_text(queued) == ("step 0 of 192 (all pictures) · 12 pictures ahead of yours in the queue"
                                  " · about 41 s left")
    rendering = Snapshot({}, {}, {}, done_steps=96, total_steps=192, ahead=0, wait_s=None, refused=0, open=1)
    assert queue_text(rendering) == "step 96 of 192 (all pictures)"


def test_a_layer_the_model_lacks_reaches_the_watcher_and_the_worker_goes_on(tiny, store, service):
    service.want("a", items(tiny, store, [("no_such_layer", 0)]))
    state = wait(service, "a")
    (error,) = state.errors.values()
    assert "no_such_layer" in error
    service.want("a", items(tiny, store, [("conv2", 11)]))
    assert len(wait(service, "a").results) == 1 and service.thread_count() == 1


def test_workers_run_below_the_web_server_s_priority(tiny, store, service):
    """Renders are batch work: a page load or a widget change must not wait behind them."""
    from featviz_core.serving.queueing import RENDER_NICENESS

    service.want("a", items(tiny, store, [("conv2", 3)]))
    wait(service, "a")
    (worker,) = service._threads

    def nice(tid: int) -> int:  # field 19 of /proc/<pid>/task/<tid>/stat
        return int(open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()[16])

    assert nice(worker.native_id) == min(19, nice(threading.get_native_id()) + RENDER_NICENESS)


def test_rates_and_batch_sizes_are_kept_for_a_bounded_number_of_picture_kinds():
    from featviz_core.serving.render_queue import KINDS_REMEMBERED, remember

    table: dict = {}
    for n in range(KINDS_REMEMBERED + 40):
        remember(table, ("settings", n), n)
    remember(table, ("settings", 50), "again")  # measured again: the newest now
    assert len(table) == KINDS_REMEMBERED and ("settings", 39) not in table and ("settings", 40) in table
    assert list(table)[-1] == ("settings", 50)


def test_a_waiting_view_is_sent_only_what_changed(monkeypatch):
    """Queued: a still note, again only when the place changes or 5 s passed; then the status and a
    bar redrawn at most once a second (every message costs the visitor's browser a redraw)."""
    from featviz_core.serving.service import Snapshot
    from featviz_ui import rendering

    sent = []

    class Area:
        def info(self, text, icon=None):
            sent.append(("note", text))

        def status(self, label, expanded):
            sent.append(("status", label))
            return self

        def progress(self, value, text=None):
            sent.append(("bar", text))
            return self

    clock = iter([0.0, 0.5, 1.0, 6.0, 6.2, 6.4, 6.6, 7.7])
    monkeypatch.setattr(rendering.time, "monotonic", lambda: next(clock))
    display = rendering.WaitDisplay(Area(), "4 pictures")

    def state(ahead, done, wait):
        return Snapshot({}, {}, {}, done_steps=done, total_steps=256, ahead=ahead, wait_s=wait, refused=0, open=4)

    for snapshot in [state(12, 0, 40), state(12, 0, 39), state(8, 0, 30), state(8, 0, 25),  # 0, 0.5, 1, 6 s
                     state(0, 10, 9), state(0, 20, 8), state(0, 30, 7), state(0, 40, 6)]:  # 6.2 ... 7.7 s
        display.show(snapshot)
    kinds = [kind for kind, _ in sent]
    assert kinds == ["note", "note", "note", "status", "bar", "bar", "bar"]  # the first bar: created empty
    assert "12 pictures ahead" in sent[0][1] and "8 pictures ahead" in sent[1][1] and "about 25 s" in sent[2][1]
    assert sent[-1][1].startswith("step 40 of 256")
