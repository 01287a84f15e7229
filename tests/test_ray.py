"""The Ray backend on a real two-node cluster (tests/ray_cases.py), run inside a fresh network namespace:
Ray binds to the machine's address, and there the only address is loopback. Its own RAY_TMPDIR keeps
the cluster's files (and Ray's "current cluster" pointer) away from any other Ray on this machine.
Also: the actor plan, and that Ray missing or unreachable is a plain message."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from featviz_core import FeatvizError
from featviz_core.backends.ray_actors import ModelWorker, plan_actors
from featviz_core.backends.work import ModelSource

from .conftest import TINY, ray_cluster_or_skip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_two_node_cluster_in_a_network_namespace():
    ray_cluster_or_skip()  # skips without ray or `unshare -n`; fails instead under FEATVIZ_REQUIRE_RAY (CI)
    temp = tempfile.mkdtemp(prefix="fvray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "RAY_TMPDIR": temp, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": ROOT}
    command = f"ip link set lo up; exec {sys.executable} -m pytest tests/ray_cases.py -q -p no:cacheprovider"
    try:
        done = subprocess.run(["unshare", "-n", "bash", "-c", command], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    report = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert "4 passed" in done.stdout, report  # every case ran: none skipped


def test_actor_plan():
    # One per GPU; on CPUs one single-threaded actor per core; --workers overrides the count.
    assert plan_actors({"CPU": 16, "GPU": 4}, "auto") == plan_actors({"CPU": 16, "GPU": 4}, "cuda")
    gpu = plan_actors({"CPU": 16, "GPU": 4}, "auto")
    assert (gpu.count, gpu.num_gpus, gpu.num_cpus) == (4, 1.0, 1.0)
    cpu = plan_actors({"CPU": 16, "GPU": 4}, "cpu")
    assert (cpu.count, cpu.num_gpus, cpu.num_cpus, cpu.threads) == (16, 0, 1.0, 1)
    two = plan_actors({"CPU": 2.0}, "auto")
    assert (two.count, two.num_cpus, two.threads) == (2, 1.0, 1)
    one = plan_actors({"CPU": 2.0}, "auto", workers=1)
    assert (one.count, one.num_cpus, one.threads) == (1, 1.0, 1)
    crowded = plan_actors({"CPU": 2.0}, "cpu", workers=4)
    assert (crowded.count, crowded.num_cpus) == (4, 0.5)
    with pytest.raises(FeatvizError, match="no GPU"):
        plan_actors({"CPU": 8}, "cuda")
    with pytest.raises(FeatvizError, match=">= 1"):
        plan_actors({"CPU": 8}, "auto", workers=0)


def test_worker_loads_weights_from_bytes_not_the_drivers_path(tiny, tmp_path):
    import torch

    from .tiny_model import build

    path = tmp_path / "tiny.pt"
    torch.save(build(3).state_dict(), path)
    data = path.read_bytes()
    path.unlink()  # a remote node has no such file: only the bytes travel
    before = torch.get_num_threads()
    try:
        worker = ModelWorker(ModelSource(TINY, weights=str(path), device="cpu"), data, threads=1)
        assert worker.model.digest == tiny.digest and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(FeatvizError, match="does not exist"):
        ModelWorker(ModelSource(TINY, weights=str(path), device="cpu"), None, threads=1)
