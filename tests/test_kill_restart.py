"""A real `streamlit run` killed with SIGKILL mid-render and started again on the same cache: the
pictures finished before the kill come from the cache (they are not rendered again), and the rest
render. The server is bench/counting_server.py, which logs every picture a batch starts."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bench.load import Server, free_port, wait_for_pages
from tests.test_browser import browser  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parent.parent
QUERY = "size=64&steps=16&ch.blocks.1=0-1&ch.blocks.5=0-3"  # blocks.1's batch first, then blocks.5's
EARLY = ["blocks.1:0", "blocks.1:1"]
LATE = [f"blocks.5:{c}" for c in range(4)]


def pictures_stored(cache: Path) -> int:
    """Picture entries in the store's database (model cards and other JSON blobs are keyed 'json:')."""
    try:
        with sqlite3.connect(f"file:{cache / 'cache.db'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM Cache WHERE key NOT LIKE 'json:%'").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_pictures_finished_before_a_kill_9_come_from_the_cache_after_a_restart(tmp_path, browser):  # noqa: F811
    cache = tmp_path / "cache"
    first = Server(ROOT, cache, free_port(), tmp_path)
    try:
        first.wait_healthy()
        browser.new_page().goto(f"{first.base}/?{QUERY}")
        deadline = time.monotonic() + 120
        # Killed once blocks.1's batch is stored and blocks.5's has started (the log has it).
        while pictures_stored(cache) < len(EARLY) or sorted(first.renders()) != EARLY + LATE:
            assert time.monotonic() < deadline, f"never stored blocks.1 and started blocks.5: {first.renders()}"
            time.sleep(0.05)
        first.kill()
    finally:
        first.stop()
    assert pictures_stored(cache) == len(EARLY)  # blocks.5's batch was cut short

    second = Server(ROOT, cache, free_port(), tmp_path)
    try:
        second.wait_healthy()
        page = browser.new_page()
        page.goto(f"{second.base}/?{QUERY}")
        wait_for_pages([page], [EARLY + LATE], timeout=120)
    finally:
        second.stop()
    assert sorted(second.renders()) == LATE  # blocks.1's pictures came from the cache
    assert pictures_stored(cache) == len(EARLY + LATE)
