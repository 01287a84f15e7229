"""Visitors' uploads: content ids, atomic writes under concurrency, the quota's least-recently-used
cleanup, ids from links validated, and messages that never show a server path."""
from __future__ import annotations

import os
import threading
import time

import pytest

from featviz_core.errors import FeatvizError
from featviz_core.store.repair import LEFTOVER_SECONDS
from featviz_core.store.uploads import UploadStore, cache_budget, upload_quota


def _leftovers(directory) -> list[str]:
    return [f for _, _, files in os.walk(directory) for f in files if f.endswith(".part")]


def test_same_content_same_id_and_the_file_holds_it(tmp_path):
    uploads = UploadStore(str(tmp_path), 10_000, 10)
    first = uploads.put(b"state dict bytes", "weights")
    assert first == uploads.put(b"state dict bytes", "weights") != uploads.put(b"other", "weights")
    assert len(first) == 20 and set(first) <= set("0123456789abcdef")
    with open(uploads.path(first, "weights"), "rb") as f:
        assert f.read() == b"state dict bytes"
    assert len(uploads.files()) == 2


def test_many_sessions_uploading_the_same_file_at_once_all_succeed(tmp_path):
    """Each writer has its own temporary file; with one shared '.part' name, the second rename
    raised FileNotFoundError (3 of 9 sessions crashed on a hosted server)."""
    data = os.urandom(2_000_000)
    errors, ids = [], []
    for round_ in range(5):
        uploads = UploadStore(str(tmp_path / str(round_)), 10**8, 10)
        start = threading.Barrier(8)

        def upload():
            start.wait()
            try:
                ids.append(uploads.put(data, "weights"))
            except Exception as exc:  # noqa: BLE001 - any failure is the bug
                errors.append(exc)

        threads = [threading.Thread(target=upload) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with open(uploads.path(ids[0], "weights"), "rb") as f:
            assert f.read() == data
    assert not errors and len(ids) == 40 and len(set(ids)) == 1
    assert not _leftovers(tmp_path)


def test_quota_removes_least_recently_used_first(tmp_path):
    uploads = UploadStore(str(tmp_path), 3_000, 3)
    a, b, c = (uploads.put(bytes([n]) * 1000, "weights") for n in range(3))
    past = time.time() - 100
    for i, upload_id in enumerate((a, b, c)):
        os.utime(uploads.path(upload_id, "weights"), (past + i, past + i))
    uploads.path(a, "weights")  # a link opened a: now the most recently used
    d = uploads.put(b"d" * 1000, "photo")  # over both quotas: b, the least recently used, goes
    assert {os.path.basename(p).split(".")[0] for _, _, p in uploads.files()} == {a, c, d}
    with pytest.raises(FeatvizError, match="not on this server"):
        uploads.path(b, "weights")
    e = uploads.put(b"e" * 2500, "weights")  # bytes alone: keeps the new file, drops the oldest two
    assert [os.path.basename(p).split(".")[0] for _, _, p in uploads.files()] == [e]


def test_a_file_larger_than_the_quota_is_refused_without_a_path(tmp_path):
    uploads = UploadStore(str(tmp_path / "secret-place"), 1000, 3)
    with pytest.raises(FeatvizError, match="keeps uploads of at most") as err:
        uploads.put(b"x" * 1001, "weights")
    assert "secret-place" not in str(err.value) and not uploads.files()


@pytest.mark.parametrize("upload_id, message", [
    ("zzzz", "malformed"), ("../../etc/passwd", "malformed"), ("0123456789ABCDEF0123", "malformed"),
    ("0123456789abcdef012", "malformed"), ("0123456789abcdef0123/", "malformed"), ("", "malformed"),
    ("0123456789abcdef0123", "not on this server"),
])
def test_ids_from_links_are_validated_and_never_become_paths(tmp_path, upload_id, message):
    uploads = UploadStore(str(tmp_path / "secret-place"), 1000, 3)
    with pytest.raises(FeatvizError, match=message) as err:
        uploads.path(upload_id, "weights")
    assert "secret-place" not in str(err.value) and str(tmp_path) not in str(err.value)


def test_unknown_kind_lists_the_valid_ones(tmp_path):
    with pytest.raises(FeatvizError, match="Valid upload kinds: weights, photo"):
        UploadStore(str(tmp_path), 1000, 3).put(b"x", "script")


def test_stale_temporary_files_of_killed_writes_are_cleaned(tmp_path):
    uploads = UploadStore(str(tmp_path), 10_000, 10)
    os.makedirs(tmp_path / "weights")
    stale, fresh = tmp_path / "weights" / ".old.part", tmp_path / "weights" / ".writing.part"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - LEFTOVER_SECONDS - 10
    os.utime(stale, (old, old))
    uploads.put(b"new", "weights")
    assert not stale.exists() and fresh.exists()  # a write in progress elsewhere is left alone


def test_uploads_share_the_cache_budget_and_hosted_is_stricter(monkeypatch):
    monkeypatch.delenv("FEATVIZ_UPLOADS_GB", raising=False)
    monkeypatch.delenv("FEATVIZ_UPLOADS_MAX_FILES", raising=False)
    monkeypatch.setenv("FEATVIZ_CACHE_GB", "4")
    pictures, uploads = cache_budget()
    assert pictures + uploads == 4 * 2**30 and uploads == 2**30
    local, hosted = upload_quota(False), upload_quota(True)
    assert local == (2**30, 100) and hosted == (2**29, 20)
    monkeypatch.setenv("FEATVIZ_UPLOADS_GB", "3")  # never more than half the budget
    assert cache_budget() == (2 * 2**30, 2 * 2**30)
    monkeypatch.setenv("FEATVIZ_UPLOADS_MAX_FILES", "-1")
    with pytest.raises(FeatvizError, match="FEATVIZ_UPLOADS_MAX_FILES"):
        upload_quota(True)
