"""A cache that heals: a garbled or truncated cache.db is moved aside and a fresh one started (core and
CLI), entries of the wrong shape are misses, and leftovers of killed writes are removed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import diskcache
import numpy as np
import pytest

from featviz_core import Store
from featviz_core.analysis.selfcheck import STATS_VERSION, natural_stats
from featviz_core.store.repair import BROKEN_SUFFIX, LEFTOVER_SECONDS, query

from .test_store import _result

pytestmark = pytest.mark.usefixtures("single_thread")
ROOT = Path(__file__).resolve().parent.parent
TINY = "tests.tiny_model:make"


def garble(db: Path) -> None:
    with open(db, "r+b") as f:
        f.write(b"this is no SQLite header!")


def truncate(db: Path) -> None:
    with open(db, "r+b") as f:
        f.truncate(os.path.getsize(db) // 3)


def filled_cache(directory: Path, entries: int = 40) -> None:
    """Enough entries (some in value files) that the database spans several pages."""
    store = Store(str(directory))
    for i in range(entries):
        store.put(_result(f"k{i}", seed=i, size=48 if i % 2 else 8))
        store.put_json(f"blob{i}", {"i": i, "pad": "x" * 500})
    store.close()


def age(path: Path, seconds: float = LEFTOVER_SECONDS + 10) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


@pytest.mark.parametrize("damage", [garble, truncate])
def test_a_damaged_database_is_moved_aside_and_a_fresh_store_works(tmp_path, damage):
    directory = tmp_path / "cache"
    filled_cache(directory)
    damage(directory / "cache.db")
    store = Store(str(directory))
    try:
        assert len(store.notices) == 1 and "started afresh" in store.notices[0]
        assert str(tmp_path) not in store.notices[0]  # the dashboard shows it to visitors
        assert (directory / f"cache.db{BROKEN_SUFFIX}").exists()
        assert store.get("k1") is None and len(store) == 0
        store.put(_result("new", seed=7))
        assert store.get("new") == _result("new", seed=7)
    finally:
        store.close()
    again = Store(str(directory))
    assert not again.notices and again.get("new") is not None  # healed once, stays healed
    again.close()


def test_leftovers_of_killed_writes_are_removed_and_fresh_writes_kept(tmp_path):
    directory = tmp_path / "cache"
    store = Store(str(directory))
    store.put(_result("zeroed", seed=1, size=96))  # large: kept in a value file
    store.put(_result("whole", seed=2, size=96))
    store.close()
    zeroed = directory / query(str(directory), "SELECT filename FROM Cache WHERE key = 'zeroed'")[0][0]
    zeroed.write_bytes(b"")  # kill -9 before the bytes reached the disk
    age(zeroed)
    folder = zeroed.parent
    orphan, fresh_orphan, part = folder / "0123.val", folder / "4567.val", directory / "site" / "index.html.part"
    part.parent.mkdir()
    for path in (orphan, fresh_orphan, part):
        path.write_bytes(b"half written")
    age(orphan)
    age(part)
    uploads = directory / "uploads" / "weights" / "0123456789abcdef0123.pt"
    uploads.parent.mkdir(parents=True)
    uploads.write_bytes(b"a visitor's file")
    age(uploads)
    store = Store(str(directory))
    try:
        assert "zeroed" not in store and store.get("whole") == _result("whole", seed=2, size=96)
        assert not zeroed.exists() and not orphan.exists() and not part.exists()
        assert fresh_orphan.exists()  # may be another process's write in progress
        assert uploads.exists()  # not the cache's to clean
    finally:
        store.close()


def test_json_of_the_wrong_shape_is_a_miss_and_dropped(store):
    shape = {"median": [float], "scale": [float]}
    for wrong in ([], {}, {"median": [1.0]}, {"median": ["a"], "scale": [1.0]}, {"median": [True], "scale": [1.0]}):
        store.put_json("stats", wrong)
        assert store.get_json("stats", shape) is None and "json:stats" not in store
    store.put_json("stats", {"median": [1, 2.5], "scale": [0.5, 1.0]})
    assert store.get_json("stats", shape) == {"median": [1, 2.5], "scale": [0.5, 1.0]}


@pytest.mark.parametrize("wrong", [[], {}, {"median": [0.0], "scale": [1.0]}])
def test_natural_statistics_of_the_wrong_shape_are_recomputed(tiny, store, wrong):
    key = f"natural:{STATS_VERSION}:{tiny.digest}:relu3:32"
    store.put_json(key, wrong)  # the last: a list of the wrong length (relu3 has 16 channels)
    stats = natural_stats(tiny, "relu3", 32, store)
    assert stats.median.shape == stats.scale.shape == (16,) and np.all(stats.scale > 0)
    assert len(store.get_json(key)["median"]) == 16


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "featviz_core", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("damage", [garble, truncate])
def test_the_cli_renders_into_a_healed_cache(tmp_path, damage):
    cache = tmp_path / "cache"
    filled_cache(cache)
    damage(cache / "cache.db")
    args = ["render", "--model", TINY, "--layer", "relu3", "--channels", "0", "--size", "32", "--steps", "4",
            "--out", str(tmp_path / "out"), "--cache", str(cache)]
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "warning: The picture cache was unreadable" in first.stderr and "Traceback" not in first.stderr
    assert (tmp_path / "out" / "relu3_0.png").exists()
    store = Store(str(cache))  # the render went into the fresh cache, which stays healthy
    assert not store.notices and len(store) == 2  # the picture and its layer's natural-photo statistics
    store.close()


def test_the_cli_treats_wrong_shapes_and_killed_writes_as_misses(tmp_path, tiny):
    """Natural statistics stored as [] and the picture's own entry zeroed by a kill -9: the render and
    its self-check run as if neither were there."""
    from featviz_core import RenderSettings, resolve_targets, spec_for

    cache = tmp_path / "cache"
    settings = RenderSettings(size=32, steps=4)
    key = spec_for(tiny, resolve_targets(tiny, [("relu3", 0)])[0], settings).key()
    store = Store(str(cache))
    store.put_json(f"natural:{STATS_VERSION}:{tiny.digest}:relu3:32", [])
    store.close()
    raw = diskcache.Cache(str(cache))
    raw.set(key, b"{" * 100_000)  # large: kept in a value file
    value_file = cache / query(str(cache), "SELECT filename FROM Cache WHERE key = ?", (key,))[0][0]
    raw.close()
    value_file.write_bytes(b"")
    age(value_file)
    result = run_cli("render", "--model", TINY, "--layer", "relu3", "--channels", "0", "--size", "32", "--steps", "4",
                     "--out", str(tmp_path / "out"), "--cache", str(cache), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(0 from cache)" in result.stdout and not value_file.exists()
    item = json.loads((tmp_path / "out" / "manifest.json").read_text())["items"][0]
    assert item["layer_channels"] == 16 and isinstance(item["z"], float)
