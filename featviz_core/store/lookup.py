"""Look up, else compute and store: derived facts that cost a forward pass or more (natural-photo
statistics, receptive fields, self-check scores) kept in the store as JSON, under one key scheme:
the key's parts joined by ':', the first part naming the kind of fact and the next its version, so
a bumped version misses instead of serving a stale value.

    stats = cached_json(store, ("natural", STATS_VERSION, digest, layer, size), compute, STATS_SHAPE)

A job's own results (pictures, scan shards) are the driver's (jobs/driver.py), not this module's.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from .disk import Store


def json_key(parts: Sequence[Any]) -> str:
    """The store key of a fact: its parts joined by ':'."""
    return ":".join(str(part) for part in parts)


def lookup_json(store: Store | None, parts: Sequence[Any], shape=None,
                valid: Callable[[Any], bool] | None = None) -> Any:
    """The stored value, or None (no store, a miss, or a value not of `shape` or not `valid`)."""
    if store is None:
        return None
    value = store.get_json(json_key(parts), shape)
    return None if value is None or (valid is not None and not valid(value)) else value


def store_json(store: Store | None, parts: Sequence[Any], value: Any) -> None:
    if store is not None:
        store.put_json(json_key(parts), value)


def cached_json(store: Store | None, parts: Sequence[Any], compute: Callable[[], Any], shape=None,
                valid: Callable[[Any], bool] | None = None) -> Any:
    """The stored value under `parts`, else `compute()`'s (a JSON value), stored for next time."""
    value = lookup_json(store, parts, shape, valid)
    if value is None:
        value = compute()
        store_json(store, parts, value)
    return value
