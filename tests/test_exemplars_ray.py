"""A dataset scan on Ray (2 single-threaded workers on a local cluster) merges to the same lists as one
process. Ray binds to the machine's address, so the cluster runs in a fresh network namespace where
only loopback exists (as root: `unshare -n`); the test is skipped where that is not allowed, and fails
instead with FEATVIZ_REQUIRE_RAY=1 (CI)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from featviz_core.analysis.scan import scan_folder
from tests.conftest import ray_cluster_or_skip
from tests.exemplar_fixtures import READABLE, build_folder

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["relu1", "relu3"]
SCAN = """
import json, sys
from featviz_core import load_model
from featviz_core.analysis.scan import scan_folder
from featviz_core.backends.work import ModelSource
folder, out = sys.argv[1:3]
model = load_model("tests.tiny_model:make", device="cpu")
events = list(scan_folder(model, folder, {layers!r}, 3, None, shard_size=4, batch=4, ray=True, workers=2,
                          source=ModelSource("tests.tiny_model:make", device="cpu")))
json.dump({{"result": events[-1].result, "shards": [e.shards for e in events]}}, open(out, "w"))
"""


def _in_namespace(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    ray_tmp = tempfile.mkdtemp(prefix="fvray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": ray_tmp,
           "OMP_NUM_THREADS": "1"}
    command = f"ip link set lo up && exec {sys.executable} -c \"$0\" \"$@\""
    try:
        return subprocess.run(["unshare", "-n", "bash", "-c", command, script, *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_ray_shards_merged_equal_one_process(tmp_path, tiny, single_thread):
    ray_cluster_or_skip()  # skips without ray or `unshare -n`; fails instead under FEATVIZ_REQUIRE_RAY (CI)
    folder = build_folder(tmp_path)
    out = tmp_path / "ray.json"
    done = _in_namespace(SCAN.format(layers=LAYERS), str(folder), str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    on_ray = json.loads(out.read_text())
    *_, local = scan_folder(tiny, str(folder), LAYERS, 3, None, shard_size=1000, batch=16)
    assert sorted(n for shards in on_ray["shards"] for n in shards) == list(range(5))  # 20 files, 5 shards
    assert on_ray["result"]["images"] == READABLE
    for layer in LAYERS:
        for channel, entries in local.result["layers"][layer].items():
            other = on_ray["result"]["layers"][layer][channel]
            assert [(e["image"], e["box"]) for e in entries] == [(e["image"], e["box"]) for e in other]
            assert [e["activation"] for e in entries] == pytest.approx([e["activation"] for e in other], rel=1e-5)
