"""The atlas on a two-node Ray cluster on this machine, on the tiny model. Run by tests/test_ray.py
inside a fresh network namespace (Ray binds to the machine's address; there it binds to loopback):

    RAY_TMPDIR=$(mktemp -d) RAY_AUTH_MODE=disabled PYTHONPATH=. \
        unshare -n bash -c 'ip link set lo up; exec python -m pytest tests/ray_cases.py'

One cluster for the module: the pictures (through the CLI) equal the single-process ones; a worker killed mid-run
(SIGKILL) is replaced and the atlas still completes; a rerun renders nothing; a worker's error reaches the
driver as its message."""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import pytest
import ray  # test_ray.py runs these cases only where ray is installed (and fails under FEATVIZ_REQUIRE_RAY)

from featviz_core import FeatvizError, RenderSettings, Store
from featviz_core.backends import ModelSource, run_work
from featviz_core.jobs.atlas import plan_atlas, run_atlas

from .conftest import TINY

SETTINGS = RenderSettings(size=32, steps=12)
LAYERS = ["relu1", "relu3"]  # 8 + 16 channels, batches of 4: six batches
SOURCE = ModelSource(TINY, device="cpu")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    ray.init(address=nodes.address, log_to_driver=False)
    yield nodes
    ray.shutdown()
    nodes.shutdown()


@pytest.fixture(scope="module")
def model():
    return SOURCE.load()


@pytest.fixture(scope="module")
def reference(model, tmp_path_factory):
    """The atlas rendered in this process: what every backend must reproduce bit for bit."""
    store = Store(str(tmp_path_factory.mktemp("reference")))
    run_atlas(SOURCE, model, plan_atlas(model, LAYERS, SETTINGS, store, batch_size=4), store, progress=False)
    yield {key: store.get(key) for key in _keys(model, store)}
    store.close()


def _keys(model, store) -> list[str]:
    from featviz_core.jobs import spec_for
    from featviz_core.spec.targets import Target

    return [spec_for(model, Target(layer, c), SETTINGS).key()
            for layer in LAYERS for c in range(model.layers[layer].channels)]


@dataclass(frozen=True)
class Refused:
    units: int = 1

    def run(self, model):
        raise FeatvizError(f"nothing to do on {model.name}")


def _same_pictures(store, reference) -> None:
    assert len(reference) == 24
    for key, want in reference.items():
        got = store.get(key)
        assert got is not None, f"{want.label} missing"
        assert (got.png, got.curve, got.snapshots) == (want.png, want.curve, want.snapshots), want.label


def _worker_pids() -> list[int]:
    """Processes of live ModelWorker actors (Ray titles an actor's process ray::ModelWorker)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::ModelWorker"):
                    pids.append(int(pid))
        except OSError:
            continue
    return pids


def test_two_nodes_render_the_single_process_pictures_through_the_cli(cluster, reference, tmp_path, capsys,
                                                                      monkeypatch):
    from featviz_core.cli.main import main
    from featviz_core.jobs import atlas

    assert len(ray.nodes()) == 2 and ray.cluster_resources()["CPU"] == 2
    asked = []
    measure = atlas.workers_batching
    monkeypatch.setattr(atlas, "workers_batching", lambda *a: asked.append(a[1:]) or measure(*a))
    out = tmp_path / "site"
    args = ["atlas", "--model", TINY, "--device", "cpu", "--layers", ",".join(LAYERS), "--size", str(SETTINGS.size),
            "--steps", str(SETTINGS.steps), "--ray", "auto", "--no-check", "--out", str(out),
            "--cache", str(tmp_path / "c")]
    assert main(args) == 0
    assert asked == [(LAYERS, SETTINGS.size, "auto")]  # a cluster elsewhere: a worker measured the batches
    assert "24 to render in 3 batches on Ray" in capsys.readouterr().err  # the worker's cap: 8 on a CPU
    by_label = {want.label: want for want in reference.values()}
    for layer in LAYERS:
        for c in range(8 if layer == "relu1" else 16):
            assert (out / "layers" / layer / f"{c}.png").read_bytes() == by_label[f"{layer}:{c}"].png


def test_a_killed_worker_is_replaced_and_the_atlas_completes_then_a_rerun_renders_nothing(cluster, model, reference,
                                                                                          tmp_path):
    import torch

    from .tiny_model import build

    # The same network from a weights file: the actors get its bytes through the object store, and a
    # restarted actor gets them again.
    weights = tmp_path / "tiny.pt"
    torch.save(build(3).state_dict(), weights)
    source = ModelSource(TINY, weights=str(weights), device="cpu")
    store = Store(str(tmp_path / "cache"))
    put, killed = store.put, []

    def kill_a_worker_after_the_first_batch(result):
        put(result)
        if not killed:
            pids = _worker_pids()
            assert len(pids) == 2, pids  # one actor per node, both still working
            os.kill(pids[0], signal.SIGKILL)
            killed.append((pids[0], len(store)))

    store.put = kill_a_worker_after_the_first_batch
    plan = plan_atlas(model, LAYERS, SETTINGS, store, batch_size=4)
    assert run_atlas(source, model, plan, store, ray="auto", workers=2, progress=False) == 24
    del store.put
    (pid, stored_then), = killed
    assert stored_then < 24  # killed mid-run
    _same_pictures(store, reference)

    rerun = plan_atlas(model, LAYERS, SETTINGS, store, batch_size=4)
    assert rerun.todo == 0 and rerun.batches == []
    assert run_atlas(SOURCE, model, rerun, store, ray="auto", progress=False) == 0
    store.close()


def test_a_worker_error_is_the_message_not_a_remote_traceback(cluster):
    with pytest.raises(FeatvizError) as raised:
        list(run_work(SOURCE, [Refused()], ray="auto", workers=1))
    assert str(raised.value) == f"nothing to do on {TINY}"


def test_concepts_and_layer_grams_learned_on_the_cluster_match_this_process(cluster, model, tmp_path):
    """Jobs through drive_cached on Ray: a layer's concepts (one item) and the Grams of two layers (one item
    that finishes in parts, each layer's Gram stored under its own key) equal the in-process ones."""
    import numpy as np

    from featviz_core.analysis.concepts import learn_concepts
    from featviz_core.analysis.photoset import PhotoSet
    from featviz_core.analysis.similarity import cka_doc, layer_grams

    photos = PhotoSet(size=32, crops=1, limit=4)
    here = learn_concepts(model, "relu3", 3, photos=photos, max_positions=2000)
    store = Store(str(tmp_path / "cache"))
    there = learn_concepts(model, "relu3", 3, photos=photos, max_positions=2000, store=store, ray="auto",
                           source=SOURCE)
    cosines = np.abs(np.asarray([c["direction"] for c in here["concepts"]])
                     @ np.asarray([c["direction"] for c in there["concepts"]]).T)
    assert np.all(cosines.max(axis=1) > 0.99), cosines  # single-threaded workers: the same concepts
    local = cka_doc(model, ["conv1", "relu3"], photos)
    remote = cka_doc(model, ["conv1", "relu3"], photos, store=store, ray="auto", sources=[SOURCE])
    assert np.allclose(local["cka"], remote["cka"], atol=1e-6)
    kept = layer_grams(model, ["relu3", "conv1"], photos, store=store)  # both from the store: no forward pass
    assert set(kept) == {"relu3", "conv1"} and len(store) >= 3
    store.close()
