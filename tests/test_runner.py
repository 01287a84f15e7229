"""render_channels through a real store: cache hits skip the model, an interrupted layer resumes
where it stopped, unreadable entries are recomputed, bad requests leave the cache alone."""
from __future__ import annotations

import os

import diskcache
import pytest

from featviz_core import (
    FeatvizError,
    RenderSettings,
    Target,
    collect,
    load_model,
    render_channels,
    resolve_targets,
    spec_for,
)

from .conftest import count_forwards

pytestmark = pytest.mark.usefixtures("single_thread")

SETTINGS = RenderSettings(size=32, steps=8)


def test_cache_hit_returns_same_png_without_running_the_model(tiny, store):
    request = [("relu3", 0), ("relu3", 1), ("conv2", 3)]
    with count_forwards(tiny.module) as calls:
        first = collect(render_channels(tiny, request, SETTINGS, store, batch_size=3))
    assert len(calls) == 2 * SETTINGS.steps  # a batch per layer on a CPU, one forward per step
    assert not any(r.cached for r in first) and len(store) == 3
    with count_forwards(tiny.module) as calls:
        events = list(render_channels(tiny, request, SETTINGS, store, batch_size=3))
    assert calls == []
    assert len(events) == 1 and events[0].total_steps == 0
    second = events[0].finished
    assert all(r.cached for r in second)
    by_label = {r.label: r for r in second}
    for r in first:
        hit = by_label[r.label]
        assert hit.png == r.png and hit.curve == r.curve and hit.snapshots == r.snapshots and hit.key == r.key
    # A different setting is a different picture: a miss.
    with count_forwards(tiny.module) as calls:
        (other,) = collect(render_channels(tiny, request[:1], SETTINGS.with_(seed=9), store, batch_size=1))
    assert len(calls) == SETTINGS.steps and not other.cached and other.png != first[0].png


def test_interrupted_layer_resumes(tiny, store):
    request = [("relu3", c) for c in range(6)]
    events = render_channels(tiny, request, SETTINGS, store, batch_size=2)
    finished = []
    for event in events:
        finished += event.finished
        if finished:
            break  # the first batch is done: stop, as a closed browser tab or Ctrl-C would
    events.close()
    assert sorted(r.channel for r in finished) == [0, 1] and len(store) == 2
    with count_forwards(tiny.module) as calls:
        rest = collect(render_channels(tiny, request, SETTINGS, store, batch_size=2))
    assert len(calls) == 2 * SETTINGS.steps  # two batches of two, not three
    assert sorted(r.channel for r in rest if r.cached) == [0, 1]
    assert sorted(r.channel for r in rest if not r.cached) == [2, 3, 4, 5]
    assert len(store) == 6


def test_progress_counts_only_what_is_left(tiny, store):
    collect(render_channels(tiny, [("relu3", 0)], SETTINGS, store, batch_size=1))
    events = list(render_channels(tiny, [("relu3", c) for c in range(3)], SETTINGS, store, batch_size=1))
    assert [r.channel for r in events[0].finished] == [0]  # cached results come first
    total = 2 * SETTINGS.steps
    assert all(e.total_steps == total for e in events)
    done = [e.done_steps for e in events]
    assert done == sorted(done) and done[-1] == total
    assert sorted(r.channel for e in events for r in e.finished) == [0, 1, 2]


def test_unreadable_entry_is_recomputed(tiny, store):
    target = Target("relu3", 2)
    key = spec_for(tiny, target, SETTINGS).key()
    diskcache.Cache(store.directory).set(key, b"\x89PNG truncated garbage")
    with count_forwards(tiny.module) as calls:
        (r,) = collect(render_channels(tiny, [("relu3", 2)], SETTINGS, store, batch_size=1))
    assert len(calls) == SETTINGS.steps and not r.cached and r.key == key
    assert store.get(key).png == r.png  # replaced by a good entry


@pytest.mark.parametrize("bad, needle", [
    ([("relu3", 0), ("relu33", 1)], "Unknown layer 'relu33'"),
    ([("relu3", 0), ("relu3", 16)], "16 channels"),
])
def test_bad_input_leaves_cache_intact(tiny, store, bad, needle):
    (kept,) = collect(render_channels(tiny, [("relu3", 0)], SETTINGS, store, batch_size=1))
    before = len(store)
    with count_forwards(tiny.module) as calls, pytest.raises(FeatvizError, match=needle):
        collect(render_channels(tiny, bad, SETTINGS, store, batch_size=1))
    assert calls == [] and len(store) == before
    assert store.get(kept.key).png == kept.png


def test_aliases_resolve_to_one_cache_entry(store):
    model = load_model("tests.tiny_model:make_aliased", device="cpu")
    assert resolve_targets(model, [("first", 1), ("last", 2)]) == [Target("conv1", 1), Target("relu3", 2)]
    assert model.layers["conv1"].alias == "first"
    (a,) = collect(render_channels(model, [("last", 2)], SETTINGS, store, batch_size=1))
    (b,) = collect(render_channels(model, [("relu3", 2)], SETTINGS, store, batch_size=1))
    assert a.layer == "relu3" and b.cached and b.png == a.png


def test_no_store_renders_every_time(tiny):
    with count_forwards(tiny.module) as calls:
        a = collect(render_channels(tiny, [("relu3", 0)], SETTINGS, None, batch_size=1))
        b = collect(render_channels(tiny, [("relu3", 0)], SETTINGS, None, batch_size=1))
    assert len(calls) == 2 * SETTINGS.steps and a[0].png == b[0].png and not b[0].cached


def test_automatic_batch_size_renders_everything(tiny, store):
    results = collect(render_channels(tiny, [("relu3", c) for c in range(5)], SETTINGS, store))
    assert sorted(r.channel for r in results) == list(range(5)) and len(store) == 5


def test_interrupting_mid_batch_stores_nothing_and_leaves_no_hooks(tiny, store):
    events = render_channels(tiny, [("relu3", c) for c in range(3)], SETTINGS, store, batch_size=3)
    for event in events:
        if event.done_steps > 0:
            break  # half-way through the only batch
    events.close()
    assert len(store) == 0
    assert all(not m._forward_hooks for m in tiny.module.modules())
    # The model still works normally afterwards.
    with count_forwards(tiny.module) as calls:
        results = collect(render_channels(tiny, [("relu3", 0)], SETTINGS, store, batch_size=1))
    assert len(calls) == SETTINGS.steps and len(results) == 1


def test_free_memory_where_the_platform_reports_only_total_ram(tiny, monkeypatch):
    """Simulates macOS: no /proc/meminfo, and sysconf has no SC_AVPHYS_PAGES; total RAM is the estimate."""
    from featviz_core.jobs import batching

    real = os.sysconf

    def sysconf(name):
        if name == "SC_AVPHYS_PAGES":
            raise ValueError("unrecognized configuration name")
        return real(name)

    monkeypatch.setattr(batching, "MEMINFO", "/nonexistent/meminfo")
    monkeypatch.setattr(os, "sysconf", sysconf)
    assert batching.free_host_memory() == real("SC_PAGE_SIZE") * real("SC_PHYS_PAGES")
    results = collect(render_channels(tiny, [("relu3", 0), ("relu3", 1)], SETTINGS))
    assert [r.label for r in results] == ["relu3:0", "relu3:1"]


def test_previews_arrive_at_snapshot_steps(tiny):
    from featviz_core.jobs.batching import snapshot_steps

    events = list(render_channels(tiny, [("relu3", 0), ("relu3", 1), ("conv2", 1)], SETTINGS, None, batch_size=3,
                                  previews=True))
    with_preview = [e for e in events if e.preview]
    # On a CPU layers get batches of their own, shallow first: conv2's batch, then relu3's.
    assert len(with_preview) == 2 * len(snapshot_steps(SETTINGS.steps))
    assert [label for label, _ in with_preview[0].preview] == ["conv2:1"]
    assert [label for label, _ in with_preview[-1].preview] == ["relu3:0", "relu3:1"]
    assert with_preview[0].preview[0][1].shape == (32, 32, 3)
    final = [r for e in events for r in e.finished]
    assert [r.label for r in final] == ["conv2:1", "relu3:0", "relu3:1"]
    for (_, picture), r in zip(with_preview[-1].preview, final[1:]):
        assert (picture == r.image).all()
    quiet = list(render_channels(tiny, [("relu3", 0)], SETTINGS, None, batch_size=1))
    assert not any(e.preview for e in quiet)


def test_cpu_batches_keep_the_largest_activation_under_glibcs_mmap_threshold(tiny, monkeypatch):
    from featviz_core.jobs import batching
    from featviz_core.jobs.batching import CPU_BLOCK_BYTES, max_batch

    monkeypatch.setattr(batching, "free_host_memory", lambda: 64 * 2**30)  # the rule, not this machine's RAM
    # The tiny net's largest activation: conv1's 8 channels at the padded size (size + 24).
    assert max_batch(tiny, ["relu3"], 64) == 8  # 8 * 88^2 * 4 bytes = 0.25 MB a picture: the cap of 8
    per_picture = 8 * (488 + 24) ** 2 * 4  # 8 MiB
    assert max_batch(tiny, ["relu3"], 488) == CPU_BLOCK_BYTES // per_picture == 4
    assert max_batch(tiny, ["relu3"], 1000) == 1  # even one picture is over: still renders
    assert max_batch(tiny, ["relu3"], 488, cap=6) == 6  # an explicit cap wins
    monkeypatch.setattr(batching, "free_host_memory", lambda: 2**30)
    assert max_batch(tiny, ["relu3"], 488) < 4  # little free memory: fewer pictures than the mmap rule allows


def test_free_host_memory_counts_the_page_cache_as_available(tmp_path, monkeypatch):
    """Linux's meminfo, written here so the rule is checked on any system; without it, at most the RAM."""
    from featviz_core.jobs import batching

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16314436 kB\nMemFree:          512000 kB\nMemAvailable:    9000000 kB\n"
                       "Cached:          8000000 kB\n")
    monkeypatch.setattr(batching, "MEMINFO", str(meminfo))
    assert batching.free_host_memory() == 9000000 * 1024  # MemAvailable: free pages plus what the kernel can drop
    meminfo.unlink()
    assert 0 < batching.free_host_memory() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@pytest.mark.parametrize("layers, cap", [(["a"] * 16, 5), (["a"] * 8 + ["b"] * 8, 5), (["a"] * 3 + ["b"] * 2, 4),
                                         (["a", "b", "c"], 8), (["a"] * 7, 1), (["a"] * 9 + ["b"], 3)])
def test_batches_are_even_within_the_cap_and_split_layers_on_request(layers, cap):
    from featviz_core.jobs.batching import plan_batches

    for split in (False, True):
        batches = plan_batches(layers, cap, split)
        assert [i for b in batches for i in b] == list(range(len(layers)))  # every picture once, in order
        assert all(1 <= len(b) <= cap for b in batches)
        if split:
            assert all(len({layers[i] for i in b}) == 1 for b in batches)
            runs = {layer: [len(b) for b in batches if layers[b[0]] == layer] for layer in set(layers)}
            assert all(max(r) - min(r) <= 1 and len(r) == -(-layers.count(name) // cap) for name, r in runs.items())
        else:
            sizes = [len(b) for b in batches]
            assert max(sizes) - min(sizes) <= 1 and len(batches) == -(-len(layers) // cap)
    assert [len(b) for b in plan_batches(["a"] * 16, 5, True)] == [4, 4, 4, 4]  # not 5 + 5 + 5 + 1


def _curves_and_pngs(results):
    return {r.label: (r.curve, r.png) for r in results}


def test_a_render_abandoned_midway_does_not_disturb_the_next(tiny):
    """A dashboard rerun abandons a render inside its batch; until it is closed its layer tap is still
    on the shared model, and must neither stop nor read the next render's forward passes."""
    alone = _curves_and_pngs(collect(render_channels(tiny, [("relu3", 0), ("relu3", 1)], SETTINGS)))
    abandoned = render_channels(tiny, [("conv2", 0)], SETTINGS)
    for _ in range(3):  # into the batch: the tap on conv2 is in place
        next(abandoned)
    try:
        again = _curves_and_pngs(collect(render_channels(tiny, [("relu3", 0), ("relu3", 1)], SETTINGS)))
    finally:
        abandoned.close()
    assert again == alone


def test_two_sessions_render_on_one_model_at_the_same_time(tiny):
    """The dashboard shares one model between sessions: two renders stepping in lockstep on two
    threads (both taps in place the whole time) give exactly what each gives alone."""
    import threading

    requests = {"deep": [("relu3", 2)], "shallow": [("conv2", 5)]}
    alone = {name: _curves_and_pngs(collect(render_channels(tiny, req, SETTINGS))) for name, req in requests.items()}
    lockstep = threading.Barrier(len(requests), timeout=60)
    together, errors = {}, []

    def session(name):
        try:
            results = []
            for event in render_channels(tiny, requests[name], SETTINGS):
                results += event.finished
                lockstep.wait()
            together[name] = _curves_and_pngs(results)
        except Exception as exc:  # reported below; the barrier must not leave the other thread waiting
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            lockstep.abort()

    threads = [threading.Thread(target=session, args=(name,)) for name in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert together == alone


def test_batch_probe_ignores_another_sessions_forward_pass(tiny, monkeypatch):
    """max_batch measures activations with hooks on the shared model; a forward pass of a bigger
    picture on another thread while the probe runs must not shrink this session's batches."""
    import threading

    import torch

    from featviz_core.jobs import batching

    monkeypatch.setattr(batching, "free_host_memory", lambda: 64 * 2**30)
    alone = batching.max_batch(tiny, ["relu3"], 488)
    probe_thread = threading.get_ident()

    def other_session_meanwhile(_module, _inputs):
        if threading.get_ident() == probe_thread:
            other = threading.Thread(target=lambda: tiny.module(torch.zeros(1, 3, 1200, 1200)))
            other.start()
            other.join()

    handle = tiny.module.conv1.register_forward_pre_hook(other_session_meanwhile)
    try:
        with torch.no_grad():
            assert batching.max_batch(tiny, ["relu3"], 488) == alone == 4
    finally:
        handle.remove()
