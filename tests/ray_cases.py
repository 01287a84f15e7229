"""The atlas on a two-node Ray cluster on this machine, on the tiny model. Run by tests/test_ray.py
inside a fresh network namespace (Ray binds to the machine's address; there it binds to loopback):

    RAY_TMPDIR=$(mktemp -d) RAY_AUTH_MODE=disabled PYTHONPATH=. \
        unshare -n bash -c 'ip link set lo up; exec python -m pytest tests/ray_cases.py'

One cluster for the module: the pictures equal the single-process ones; a worker killed mid-run
(SIGKILL) is replaced and the atlas still completes; a rerun renders nothing."""
from __future__ import annotations

import os
import signal

import pytest

ray = pytest.importorskip("ray")

from featviz_core import RenderSettings, Store, load_model  # noqa: E402
from featviz_core.atlas import plan_atlas, run_atlas  # noqa: E402
from featviz_core.workers import ModelSource  # noqa: E402

from .conftest import TINY  # noqa: E402

SETTINGS = RenderSettings(size=32, steps=24)
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
    from featviz_core.runner import spec_for
    from featviz_core.objectives import Target

    return [spec_for(model, Target(layer, c), SETTINGS).key() for layer in LAYERS for c in range(model.layers[layer].channels)]


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


def test_two_nodes_render_the_single_process_pictures(cluster, model, reference, tmp_path):
    assert len(ray.nodes()) == 2 and ray.cluster_resources()["CPU"] == 2
    store = Store(str(tmp_path / "cache"))
    plan = plan_atlas(model, LAYERS, SETTINGS, store, batch_size=4)
    assert run_atlas(SOURCE, model, plan, store, ray="auto", progress=False) == 24
    _same_pictures(store, reference)
    store.close()


def test_a_killed_worker_is_replaced_and_the_atlas_completes_then_a_rerun_renders_nothing(cluster, model, reference, tmp_path):
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
    assert run_atlas(SOURCE, model, plan, store, ray="auto", workers=2, progress=False) == 24
    del store.put
    (pid, stored_then), = killed
    assert stored_then < 24  # killed mid-run
    _same_pictures(store, reference)

    rerun = plan_atlas(model, LAYERS, SETTINGS, store, batch_size=4)
    assert rerun.todo == 0 and rerun.batches == []
    assert run_atlas(SOURCE, model, rerun, store, ray="auto", progress=False) == 0
    store.close()
