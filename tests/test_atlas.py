"""The atlas in this process on the tiny model: it plans every channel of the chosen layers, stores each
batch as it arrives (a killed run resumes, a finished one renders nothing), and a picture does not
depend on how the batches fall."""
from __future__ import annotations

import os
import sys

import pytest

from featviz_core import FeatvizError, RenderSettings, Store, collect, load_model, render_channels
from featviz_core.backends.work import ModelSource
from featviz_core.jobs.atlas import atlas_layers, check_room, estimated_entry_bytes, plan_atlas, run_atlas
from featviz_core.jobs.batching import Batching

from .conftest import TINY, count_forwards

pytestmark = pytest.mark.usefixtures("single_thread")

SETTINGS = RenderSettings(size=32, steps=6)
SOURCE = ModelSource(TINY, device="cpu")


def test_layers_default_to_every_listed_layer_but_logits(tiny):
    assert atlas_layers(tiny) == ["conv1", "relu1", "conv2", "relu2", "conv3", "relu3"]
    assert atlas_layers(tiny, ["relu3", "conv1"]) == ["conv1", "relu3"]  # shallow to deep
    with pytest.raises(FeatvizError, match="channels, not classes"):
        atlas_layers(tiny, ["logits"])
    with pytest.raises(FeatvizError, match="Unknown layer 'relu9'.*relu3"):
        atlas_layers(tiny, ["relu9"])
    with pytest.raises(FeatvizError, match="channel objective"):
        plan_atlas(tiny, ["relu3"], SETTINGS.with_(objective="neuron"), None)


def test_killed_run_resumes_and_a_finished_one_renders_nothing(tiny, store):
    layers = ["relu1", "relu3"]  # 8 + 16 channels
    plan = plan_atlas(tiny, layers, SETTINGS, store, batch_size=5)
    assert plan.total == plan.todo == 24
    # The batching rule's batches: never two layers in one on a CPU, as even as the cap allows.
    assert [b.units for b in plan.batches] == [4, 4, 4, 4, 4, 4]
    assert {len({layer for layer, _ in b.targets}) for b in plan.batches} == {1}

    put, stored = store.put, []

    def killed_after_two_batches(result):
        if len(stored) == 8:
            raise KeyboardInterrupt  # Ctrl-C, or the machine going away, mid-atlas
        stored.append(result.key)
        put(result)

    store.put = killed_after_two_batches
    with pytest.raises(KeyboardInterrupt):
        run_atlas(SOURCE, tiny, plan, store, progress=False)
    del store.put
    assert len(store) == 8

    rest = plan_atlas(tiny, layers, SETTINGS, store, batch_size=5)
    assert rest.total == 24 and rest.todo == 16
    assert not set(rest.keys) & set(stored)
    with count_forwards(tiny.module) as calls:
        assert run_atlas(SOURCE, tiny, rest, store, progress=False) == 16
    assert len(calls) == 4 * SETTINGS.steps  # 16 pictures in batches of 4
    assert len(store) == 24

    done = plan_atlas(tiny, layers, SETTINGS, store, batch_size=5)
    assert done.todo == 0 and done.batches == []
    with count_forwards(tiny.module) as calls:
        assert run_atlas(SOURCE, tiny, done, store, progress=False) == 0
    assert calls == []


def test_pictures_do_not_depend_on_how_batches_fall(tiny, tmp_path):
    layers = ["conv2", "relu3"]
    # Batches of 2-3, of 16, and of 10-11 planned for a GPU, one with both layers (which a CPU worker's
    # runner still renders a layer at a time).
    ways = [(3, None), (16, None), (None, Batching(12, mix_layers=True))]
    stores = [Store(str(tmp_path / f"cache{n}")) for n in range(len(ways))]
    try:
        for (cap, batching), store in zip(ways, stores):
            plan = plan_atlas(tiny, layers, SETTINGS, store, cap, batching)
            run_atlas(SOURCE, tiny, plan, store, progress=False)
        assert [len({layer for layer, _ in b.targets}) for b in plan.batches] == [1, 2, 1]
        every = [(layer, c) for layer in layers for c in range(16)]
        small, large, mixed = ({r.key: r for r in collect(render_channels(tiny, every, SETTINGS, store))}
                               for store in stores)
        # Pictures rendered outside any atlas, in other company, are the same pictures too.
        pair = collect(render_channels(tiny, [("relu3", 11), ("relu3", 2)], SETTINGS, None, batch_size=2))
    finally:
        for store in stores:
            store.close()
    assert len(small) == len(large) == 32 and small.keys() == large.keys() == mixed.keys()
    for key, picture in small.items():
        for other in (large[key], mixed[key]):
            assert (picture.png, picture.curve, picture.snapshots) == (other.png, other.curve, other.snapshots)
    for picture in pair:
        assert (picture.png, picture.curve) == (small[picture.key].png, small[picture.key].curve)


def test_a_worker_with_other_weights_is_refused(tiny, store):
    other = load_model("tests.tiny_model:make_other_seed", device="cpu")
    plan = plan_atlas(tiny, ["relu3"], SETTINGS.with_(steps=1), store, batch_size=16)
    with pytest.raises(FeatvizError, match="different model"):
        run_atlas(SOURCE, other, plan, store, progress=False)
    assert len(store) == 0


def test_an_atlas_too_big_for_the_cache_stops_and_says_how_big(tiny, tmp_path):
    store = Store(str(tmp_path / "cache"), size_limit=150_000)  # 8 of these pictures, not 16
    plan = plan_atlas(tiny, ["relu3"], SETTINGS, store, batch_size=4)
    try:
        with pytest.raises(FeatvizError, match="needs about"):  # the CLI's check before any render
            check_room(store, plan, estimated_entry_bytes(SETTINGS))
        check_room(store, plan_atlas(tiny, ["relu1"], SETTINGS, store), estimated_entry_bytes(SETTINGS))  # 8 fit
        with pytest.raises(FeatvizError, match=r"needs about .* GB of cache.*FEATVIZ_CACHE_GB=1\b"):
            run_atlas(SOURCE, tiny, plan, store, progress=False)
        assert len(store) == 4  # the first batch is kept
    finally:
        store.close()


def test_an_atlas_over_the_default_budget_raises_the_limit_unless_the_user_chose_one(tmp_path, monkeypatch):
    from featviz_core.cli.atlas import _room_for

    monkeypatch.delenv("FEATVIZ_CACHE_GB", raising=False)
    store = _room_for(Store(str(tmp_path / "cache"), size_limit=150_000), 10 * 2**20)
    try:
        assert store.size_limit >= 10 * 2**20  # the plain `featviz atlas --model lite0` needs ~3.7 GB
    finally:
        store.close()
    monkeypatch.setenv("FEATVIZ_CACHE_GB", "0.001")
    chosen = Store(str(tmp_path / "cache2"))
    try:
        assert _room_for(chosen, 10 * 2**20) is chosen  # a budget the user set is kept: check_room refuses
    finally:
        chosen.close()


def test_cli_writes_the_atlas_and_a_rerun_renders_nothing(tmp_path, capsys):
    from featviz_core.cli.main import main

    args = ["atlas", "--model", "tests.tiny_model:make_aliased", "--device", "cpu", "--layers", "relu3,first",
            "--size", "32", "--steps", "3", "--out", str(tmp_path / "atlas"), "--cache", str(tmp_path / "cache")]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "24 pictures in 2 layers, 0 already in the cache, 24 to render" in first.err
    assert ("--ray renders on all" in first.err) == ((os.cpu_count() or 1) > 1)
    index = tmp_path / "atlas" / "index.html"
    assert f"to {index}" in first.out and "relu3" in index.read_text()
    pictures = {(p.parent.name, p.name) for p in (tmp_path / "atlas" / "layers").glob("*/*.png")}
    assert pictures == {("conv1", f"{c}.png") for c in range(8)} | {("relu3", f"{c}.png") for c in range(16)}
    assert main(args) == 0
    assert "24 already in the cache, 0 to render in 0 batches" in capsys.readouterr().err


def test_cli_ray_without_ray_says_how_to_install(tmp_path, capsys, monkeypatch):
    from featviz_core.cli.main import main

    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["atlas", "--model", TINY, "--ray", "--out", str(tmp_path / "atlas"),
                 "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert 'pip install "featviz[ray]"' in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()  # refused before any work
    assert main(["atlas", "--model", TINY, "--workers", "0", "--ray", "--cache", str(tmp_path / "c")]) == 2
    assert "--workers 0 is out of range" in capsys.readouterr().err
    assert main(["atlas", "--model", TINY, "--workers", "2", "--cache", str(tmp_path / "c")]) == 2
    assert "add --ray" in capsys.readouterr().err


def test_a_batch_out_of_gpu_memory_is_halved_with_the_same_pictures(tiny, caplog):
    import logging

    from featviz_core.jobs.pictures import RenderBatch

    oom = load_model("tests.tiny_model:make_oom", device="cpu")  # a forward pass of over 3 pictures fails
    batch = RenderBatch(tuple(("relu3", c) for c in range(8)), SETTINGS)
    with caplog.at_level(logging.WARNING, logger="featviz_core.jobs.pictures"):
        split = batch.run(oom)
    assert "Out of GPU memory with 8 pictures in a batch" in caplog.text
    whole = {r.label: r for r in batch.run(tiny)}  # the same weights under another name (other keys)
    assert sorted(r.label for r in split) == sorted(whole)
    assert all(r.png == whole[r.label].png and r.curve == whole[r.label].curve for r in split)


def test_out_of_memory_lowers_the_cap_of_the_atlas_batches_that_follow(store, caplog):
    """The atlas's batches come from the driver's queue one at a time: after the first batch halved
    twice for want of GPU memory, the batches after it are planned at the lower cap, not tried at 8 again."""
    oom = load_model("tests.tiny_model:make_oom", device="cpu")  # a forward pass of over 3 pictures fails
    ran = []
    oom.module.register_forward_pre_hook(lambda _m, inputs: ran.append(inputs[0].shape[0]), prepend=True)
    plan = plan_atlas(oom, ["conv2", "relu3"], SETTINGS, store, batch_size=8)
    assert [b.units for b in plan.batches] == [8, 8, 8, 8]
    assert run_atlas(SOURCE, oom, plan, store, progress=False) == 32 == len(store)
    assert ran.count(8) == 1 and ran.count(4) == 1 and ran.count(2) == 16 * SETTINGS.steps
    assert set(ran) == {8, 4, 2}


def test_cli_concepts_count_is_checked_before_any_work(tmp_path, capsys):
    from featviz_core.cli.main import main

    for bad in ("-3", "257"):
        assert main(["atlas", "--model", TINY, "--concepts", bad, "--out", str(tmp_path / "atlas"),
                     "--cache", str(tmp_path / "c")]) == 2
        err = capsys.readouterr().err
        assert f"Concepts per layer (--concepts) {bad} is out of range: choose a whole number from 1 to 256" in err
        assert "Traceback" not in err and not (tmp_path / "c").exists()  # refused before any work
