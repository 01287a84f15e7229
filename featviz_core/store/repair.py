"""Opening the disk cache so that damage heals instead of breaking every page and command.

- An unreadable database (a garbled header, a truncated file: sqlite3.DatabaseError from opening it or
  from SQLite's quick check) is moved aside as `cache.db.broken` and a fresh one is started, with a
  warning. Its value files, which nothing refers to any more, go with the next cleaning.
- Leftovers of a killed write are removed: value files no entry refers to, entries whose value file is
  missing or of the wrong size (a 0-byte file after kill -9), and `.part` files. Only leftovers older
  than a minute count, so a write still in progress in another process is left alone.
"""
from __future__ import annotations

import logging
import os
import re
import sqlite3
import time

from ..errors import FeatvizError

DB = "cache.db"
BROKEN_SUFFIX = ".broken"
LEFTOVER_SECONDS = 60
PART = ".part"  # the suffix of a file being written (uploads, exports): renamed into place when complete
_VALUE_DIR = re.compile(r"[0-9a-f]{2}")
log = logging.getLogger("featviz")


class CacheFolderError(FeatvizError):
    """The cache folder cannot be used at all. Its message names the folder: right for the person
    who chose it (the command line, the server's log), not for a dashboard's visitors."""


def open_cache(directory: str, **settings):
    """diskcache.Cache(directory, **settings), healed. Returns (cache, notices for people)."""
    import diskcache

    notices = []
    try:
        cache = diskcache.Cache(directory, **settings)
        ok = query(directory, "PRAGMA quick_check") == [("ok",)]
    except (OSError, sqlite3.OperationalError) as exc:  # a file, no permission, locked: not damage to heal
        why = getattr(exc, 'strerror', None) or exc
        raise CacheFolderError(f"Cannot use {directory!r} as the cache folder ({why}): "
                           "give a folder this user can write (FEATVIZ_CACHE; on the command line --cache, or "
                           "--no-cache).") from None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        cache, ok = None, False
        log.info("cache database %s is unreadable (%s)", os.path.join(directory, DB), exc)
    if not ok:
        if cache is not None:
            cache.close()
        _move_aside(directory)
        cache = diskcache.Cache(directory, **settings)
        notices.append(f"The picture cache was unreadable (damaged database) and was started afresh at "
                       f"{time.strftime('%H:%M UTC', time.gmtime())}; the old one is kept as {DB}{BROKEN_SUFFIX}. "
                       "Pictures are rendered again as they are needed.")
    removed = clean_leftovers(cache, directory)
    if removed:
        log.info("removed %d leftovers of interrupted writes from %s", removed, directory)
    return cache, notices


def query(directory: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of `sql` on the cache's database, through SQLite's own API (a connection of our own, not
    diskcache's private one). Damage raises sqlite3.DatabaseError, as diskcache would."""
    db = sqlite3.connect(os.path.join(directory, DB), timeout=60)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def _move_aside(directory: str) -> None:
    """The damaged database and its journal files, renamed so SQLite cannot replay them into the new one."""
    for suffix in ("", "-wal", "-shm"):
        path = os.path.join(directory, DB + suffix)
        if os.path.exists(path):
            os.replace(path, os.path.join(directory, DB + BROKEN_SUFFIX + suffix))


def _value_files(directory: str) -> list[str]:
    """diskcache's value files: two levels of two-hex-digit folders (nothing else under the cache)."""
    found = []
    for first in _listdir(directory):
        if _VALUE_DIR.fullmatch(first):
            for second in _listdir(os.path.join(directory, first)):
                folder = os.path.join(directory, first, second)
                found += [os.path.join(folder, name) for name in _listdir(folder) if name.endswith(".val")]
    return found


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path) if os.path.isdir(path) else []
    except OSError:
        return []


def _old(path: str, now: float) -> bool:
    try:
        return now - os.path.getmtime(path) > LEFTOVER_SECONDS
    except FileNotFoundError:
        return False


def clean_leftovers(cache, directory: str) -> int:
    """Removes what killed writes leave behind (see the module's note); returns how many."""
    now, removed = time.time(), 0
    rows = query(directory, "SELECT key, size, filename FROM Cache WHERE filename IS NOT NULL")
    referenced = {os.path.join(directory, filename): (key, size) for key, size, filename in rows}
    for path, (key, size) in referenced.items():
        real = os.path.getsize(path) if os.path.exists(path) else -1
        if real == -1 or (real != size and _old(path, now)):
            cache.delete(key)
            removed += 1
    for path in _value_files(directory):
        if path not in referenced and _old(path, now):
            _remove(path)
            removed += 1
    return removed + remove_stale_parts(directory)


def remove_stale_parts(directory: str) -> int:
    """Removes the temporary files (`*.part`) of writes killed more than LEFTOVER_SECONDS ago, below
    `directory` (the cache's, the uploads'); returns how many."""
    now, removed = time.time(), 0
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(PART) and _old(path, now):
                _remove(path)
                removed += 1
    return removed


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
