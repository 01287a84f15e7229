"""The one driver (featviz_core/jobs/driver.py): renders, dreams, atlases and exemplar scans all store
their results through it and nothing else; a killed job resumes from what it stored; a batch out of
GPU memory lowers the cap of the batches after it; the in-process backend gives the same pictures
whether it loads the model itself or is handed the driver's."""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from featviz_core import RenderSettings, Store, collect, load_model, render_channels
from featviz_core.analysis.scan import scan_folder
from featviz_core.backends import ModelSource
from featviz_core.inputs.photos import photo_digest
from featviz_core.jobs import dream_channels, plan_atlas, run_atlas
from featviz_core.spec.dream import DreamSettings
from tests.exemplar_fixtures import build_folder

from .conftest import TINY, count_forwards

pytestmark = pytest.mark.usefixtures("single_thread")

SETTINGS = RenderSettings(size=32, steps=4)
DREAM = DreamSettings(size=32, steps=4, octaves=1)
PHOTO = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
CORE = Path(__file__).resolve().parent.parent / "featviz_core"


class CountingStore(Store):
    """A store that notes which module called put and put_json, and how often."""

    def __init__(self, directory: str):
        super().__init__(directory)
        self.puts: list[str] = []
        self.json_puts: list[str] = []

    def put(self, result) -> None:
        self.puts.append(sys._getframe(1).f_globals["__name__"])
        super().put(result)

    def put_json(self, key: str, value) -> None:
        self.json_puts.append(sys._getframe(1).f_globals["__name__"])
        super().put_json(key, value)


def test_every_job_stores_through_the_driver_alone(tiny, tmp_path):
    store = CountingStore(str(tmp_path / "cache"))
    try:
        collect(render_channels(tiny, [("relu3", 0), ("conv2", 1)], SETTINGS, store, batch_size=2))
        collect(dream_channels(tiny, PHOTO, photo_digest(PHOTO), [("relu2", None)], DREAM, store))
        plan = plan_atlas(tiny, ["relu1"], SETTINGS, store, batch_size=4)
        run_atlas(ModelSource(TINY, device="cpu"), tiny, plan, store, progress=False)
        photos = str(build_folder(tmp_path / "photos"))
        events = list(scan_folder(tiny, photos, ["relu3"], 2, store, shard_size=8))
        assert events[-1].result is not None
        assert len(store.puts) == 2 + 1 + 8  # every new picture once: renders, the dream, the atlas
        assert set(store.puts) == {"featviz_core.jobs.driver"}
        # Job results (shards, the merged scan) from the driver; derived facts (the receptive field) from lookup.
        assert set(store.json_puts) == {"featviz_core.jobs.driver", "featviz_core.store.lookup"}
        shards = sum(len(e.shards) for e in events)
        assert shards > 1 and store.json_puts.count("featviz_core.jobs.driver") == shards + 1  # and the merged one
        before = (len(store.puts), len(store.json_puts))
        collect(render_channels(tiny, [("relu3", 0), ("conv2", 1)], SETTINGS, store, batch_size=2))
        collect(dream_channels(tiny, PHOTO, photo_digest(PHOTO), [("relu2", None)], DREAM, store))
        list(scan_folder(tiny, photos, ["relu3"], 2, store, shard_size=8))
        assert (len(store.puts), len(store.json_puts)) == before  # all served from the store
    finally:
        store.close()


def test_nothing_else_in_the_core_writes_job_results():
    """Every call of a method named put or put_json in the core, whatever its receiver is called (a
    writer's `cache.put(result)` counts as much as `store.put(result)`): the store's writers are the
    driver (put, put_json) and the lookup helper (put_json); the one other put is Ray's object store."""
    not_our_store = {("backends/ray_actors.py", "put", "ray")}
    writers = {}
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("put", "put_json"):
                where = path.relative_to(CORE).as_posix()
                if (where, node.func.attr, ast.unparse(node.func.value)) not in not_our_store:
                    writers.setdefault(node.func.attr, set()).add(where)
    assert writers == {"put": {"jobs/driver.py"}, "put_json": {"jobs/driver.py", "store/lookup.py"}}


def test_a_killed_dream_resumes_from_its_stored_batches(tiny, store):
    request = [("relu2", None), ("relu3", None), ("conv2", None)]
    events = dream_channels(tiny, PHOTO, photo_digest(PHOTO), request, DREAM, store, batch_size=1)
    for event in events:
        if event.finished:
            break  # the first batch is done and stored: stop, as Ctrl-C would
    events.close()
    assert len(store) == 1
    with count_forwards(tiny.module) as calls:
        rest = collect(dream_channels(tiny, PHOTO, photo_digest(PHOTO), request, DREAM, store, batch_size=1))
    assert len(calls) == 2 * DREAM.steps
    assert sorted(r.cached for r in rest) == [False, False, True] and len(store) == 3


def test_out_of_memory_lowers_the_cap_of_the_batches_that_follow(caplog):
    oom = load_model("tests.tiny_model:make_oom", device="cpu")  # a forward pass of over 3 pictures fails
    ran = []
    oom.module.register_forward_pre_hook(lambda _m, inputs: ran.append(inputs[0].shape[0]), prepend=True)
    request = [("conv2", c) for c in range(8)] + [("relu3", c) for c in range(8)]
    results = collect(render_channels(oom, request, SETTINGS, batch_size=8))
    assert sorted(r.label for r in results) == sorted(f"{layer}:{c}" for layer, c in request)
    # conv2's batch tried 8, then 4, then ran in 2s; relu3's batch, planned after, never tried more than 2.
    assert ran.count(8) == 1 and ran.count(4) == 1 and ran.count(2) == 8 * SETTINGS.steps


def test_one_replan_rule_for_the_driver_queue_and_a_batch_handed_back():
    """BatchQueue.lower is the one re-plan after out of memory: the batch handed back runs first again,
    with the batches not handed out yet, all at the lower cap and a layer to a batch on a CPU."""
    from featviz_core.jobs.batching import Batching, BatchQueue
    from featviz_core.spec.targets import Target

    targets = [Target("conv2", c) for c in range(6)] + [Target("relu3", c) for c in range(6)]
    queue = BatchQueue(targets, Batching(6, mix_layers=False))
    handed = iter(queue)
    first = next(handed)
    assert first == targets[:6]
    queue.lower(3, retry=first)
    rest = list(handed)
    assert [len(b) for b in rest] == [3, 3, 3, 3] and [t for b in rest for t in b] == targets
    assert all(len({t.layer for t in b}) == 1 for b in rest)
    queue.lower(5)  # a higher cap than the one in force changes nothing
    assert queue.batching.cap == 3


def test_in_process_atlas_is_the_same_whoever_loads_the_model(tiny, tmp_path):
    """The atlas in this process on the driver's model, on a model the backend loads itself, and the
    dashboard's render path (render_channels): the same pictures, curves and frames."""
    layers = ["conv2", "relu3"]
    got = []
    for n, handed in enumerate((tiny, None)):
        store = Store(str(tmp_path / f"c{n}"))
        plan = plan_atlas(tiny, layers, SETTINGS, store, batch_size=6)
        source = ModelSource(TINY, device="cpu")
        if handed is None:  # the backend loads its own copy from the source
            from featviz_core.jobs.driver import drive

            list(drive(plan.batches, store, source, expected=set(plan.keys)))
        else:
            run_atlas(source, handed, plan, store, progress=False)
        got.append({k: store.get(k) for k in plan.keys})
        store.close()
    direct = {r.key: r for r in collect(render_channels(tiny, [(layer, c) for layer in layers for c in
                                                               range(tiny.layers[layer].channels)], SETTINGS))}
    assert len(direct) == 32 and got[0].keys() == got[1].keys() == direct.keys()
    for key, want in direct.items():
        for pictures in got:
            assert (pictures[key].png, pictures[key].curve, pictures[key].snapshots) == \
                (want.png, want.curve, want.snapshots), want.label


@dataclass(frozen=True)
class MeanWork:
    """A JSON job item for drive_cached: the tiny model's mean activation of a layer on a constant picture."""

    layer: str
    value: float
    units: int = 1

    def run(self, model) -> dict:
        import torch

        from featviz_core.models.hooks import LayerTap
        with torch.no_grad(), LayerTap(model.module, [self.layer]) as tap:
            out = tap.run(model.normalize(torch.full((1, model.in_channels, 16, 16), self.value)))
        return {"mean": float(out[self.layer].mean())}


def test_drive_cached_serves_stored_keys_and_keeps_each_result_as_it_arrives(tiny, tmp_path):
    from featviz_core.jobs.driver import drive_cached
    store = Store(str(tmp_path / "cache"))
    try:
        store.put_json("mean:a", {"mean": 123.0})
        keyed = [("mean:a", MeanWork("relu1", 0.5)), ("mean:b", MeanWork("relu1", 0.2)),
                 ("mean:c", MeanWork("relu3", 0.9))]
        events = drive_cached(keyed, store, ModelSource(TINY, device="cpu"), model=tiny)
        first = next(events)
        assert first[0] == 0 and first[1].result == {"mean": 123.0} and first[1].cached  # from the store, not run
        second = next(events)
        assert second[0] == 1 and not second[1].cached and store.get_json("mean:b") == second[1].result
        events.close()  # killed after the second item: it is kept, the third never ran
        assert store.get_json("mean:c") is None
        again = dict(drive_cached(keyed, store, ModelSource(TINY, device="cpu"), model=tiny,
                                  valid=lambda v: v["mean"] != 123.0))
        assert set(again) == {0, 1, 2} and again[0].result["mean"] != 123.0  # an invalid value is rerun
        assert again[1].result == second[1].result and store.get_json("mean:c") == again[2].result
    finally:
        store.close()
