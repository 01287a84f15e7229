"""The disk store: a real diskcache directory in tmp_path, JSON entries (never pickles), unreadable
entries dropped, the size limit enforced."""
from __future__ import annotations

import json

import diskcache
import numpy as np
import pytest

from featviz_core import ChannelResult, Store
from featviz_core.store.disk import png_array, png_bytes

pytestmark = pytest.mark.usefixtures("single_thread")


def _result(key: str, seed: int = 0, size: int = 32) -> ChannelResult:
    rng = np.random.default_rng(seed)
    pic = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    png = png_bytes(pic)
    return ChannelResult("relu3", seed, png, [0.1, 0.5, float(seed)], [(1, png_bytes(pic // 2)), (3, png)],
                         0.25, False, key=key)


def test_roundtrip(store):
    r = _result("k1", seed=3)
    assert store.get("k1") is None and "k1" not in store
    store.put(r)
    got = store.get("k1")
    assert got == r  # every field but `cached`
    assert got.cached and not r.cached
    np.testing.assert_array_equal(got.image, png_array(r.png))
    assert "k1" in store and len(store) == 1


def test_entries_are_json_bytes_not_pickles(store, tmp_path):
    store.put(_result("k1"))
    raw = diskcache.Cache(store.directory).get("k1")
    assert isinstance(raw, bytes)
    doc = json.loads(raw)
    assert doc["key"] == "k1" and doc["layer"] == "relu3"


def test_survives_reopening(tmp_path):
    path = str(tmp_path / "c")
    s = Store(path)
    s.put(_result("k1", seed=1))
    s.close()
    again = Store(path)
    try:
        assert again.get("k1") == _result("k1", seed=1)
    finally:
        again.close()


@pytest.mark.parametrize("garbage", [b"\x00\xffnot json", b'{"layer": "relu3"}', 12345, "text"])
def test_unreadable_entry_is_a_miss_and_is_dropped(store, garbage):
    store.put(_result("good"))
    diskcache.Cache(store.directory).set("bad", garbage)
    assert "bad" in store
    assert store.get("bad") is None
    assert "bad" not in store
    assert store.get("good") is not None


def test_json_blobs(store):
    store.put_json("stats", {"median": [1.0, 2.0]})
    assert store.get_json("stats") == {"median": [1.0, 2.0]}
    assert store.get_json("missing") is None
    diskcache.Cache(store.directory).set("json:broken", b"{nope")
    assert store.get_json("broken") is None and "json:broken" not in store


def test_size_limit_evicts_least_recently_used(tmp_path):
    """~110 KB entries under a 2 MB cap: old entries go, the cap holds, a recently read entry stays.
    (diskcache culls up to 10 least-recently-used entries at a time once over the cap.)"""
    limit = 2_000_000
    s = Store(str(tmp_path / "small"), size_limit=limit)
    try:
        entry = len(_result("k", size=96).to_bytes())
        assert 80_000 < entry < 200_000
        for i in range(40):
            s.put(_result(f"k{i}", seed=i, size=96))
            assert s.volume() <= limit + entry
            assert s.get("k0") is not None  # read after every write: never the least recently used
        assert 5 <= len(s) < 40
        assert s.get("k39") is not None  # the newest entry is kept
        assert s.get("k1") is None and s.get("k2") is None  # old, unread entries went
    finally:
        s.close()


def test_truncated_entry_file_is_a_miss(store):
    """Large entries live in their own files: a file cut short (disk full, copied half-way) is a miss."""
    store.put(_result("big", size=128))
    files = [p for p in __import__("pathlib").Path(store.directory).rglob("*.val")]
    assert len(files) == 1
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])
    assert store.get("big") is None
    assert "big" not in store


class _Payload:
    """Unpickling this creates a marker file: proof that the cache ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_entry_is_never_unpickled(store, tmp_path):
    marker = tmp_path / "executed"
    diskcache.Cache(store.directory).set("foreign", _Payload(str(marker)))
    try:
        assert store.get("foreign") is None
    finally:
        assert not marker.exists(), "reading the cache executed code from a pickled entry"


def test_entry_that_fails_to_unpickle_is_a_miss(store, monkeypatch):
    import sys
    import types

    mod = types.ModuleType("featviz_test_gone")

    class Gone:
        pass

    Gone.__module__, Gone.__qualname__ = "featviz_test_gone", "Gone"
    mod.Gone = Gone
    monkeypatch.setitem(sys.modules, "featviz_test_gone", mod)
    diskcache.Cache(store.directory).set("gone", Gone())
    monkeypatch.delitem(sys.modules, "featviz_test_gone")  # as if written by another version of the code
    assert store.get("gone") is None
    assert store.get_json("gone") is None
