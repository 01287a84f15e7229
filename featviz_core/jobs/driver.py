"""The one driver of every batch job (renders, dreams, atlases, exemplar scans): serve what is
cached, run the rest on a backend (this process, or Ray actors: backends.dispatch), and store each
result the moment it arrives, so a killed job resumes where it stopped and the dashboard serves
every finished picture at once. It is the only code that writes job results into the store.

    for event in drive_pictures(model, targets, keys, make_batch, steps, size, store):
        ...  # Progress: steps done, results finished, previews (in this process)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..backends.dispatch import run_events
from ..backends.work import Finished, ModelSource, Step, Work
from ..errors import FeatvizError
from ..models.loading import LoadedModel
from ..spec.targets import Target
from ..store.disk import ChannelResult, Store
from .batching import BatchQueue, batching_for

OTHER_MODEL = ("A worker rendered with a different model than this one (its weights or featviz version differ): "
               "install the same featviz and weights on every node.")


@dataclass
class Progress:
    """An event of a picture job: steps done so far out of all steps still to render."""

    done_steps: int
    total_steps: int
    finished: list[ChannelResult] = field(default_factory=list)  # results completed by this event
    preview: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (label, picture) mid-render


def keep(store: Store | None, value: Any, key: str | None = None) -> None:
    """A job's result into the store: a ChannelResult under its own key, anything else as JSON under `key`."""
    if store is None:
        return
    if isinstance(value, ChannelResult):
        store.put(value)
    else:
        store.put_json(key, value)


def drive(items: Iterable[Work], store: Store | None, source: ModelSource | None = None, *,
          model: LoadedModel | None = None, ray: str | bool | None = None, workers: int | None = None,
          keys: Sequence[str] | None = None, expected: set[str] | None = None) -> Iterator[tuple[int, Step | Finished]]:
    """Run `items` (see backends.run_events) and keep every Finished result as it arrives; yields
    (index, event). A result that is a list of ChannelResults is stored picture by picture, and each
    key must be one of `expected` when given (a worker with another model makes other keys); any
    other result is stored as JSON under `keys[index]`, or, where that is a {part: key} dict (an item
    that finishes in parts), each {part: value} of the result under its part's key."""
    for index, event in run_events(source, items, ray, workers, model):
        if isinstance(event, Finished):
            if isinstance(event.result, list) and all(isinstance(r, ChannelResult) for r in event.result):
                if expected is not None and not {r.key for r in event.result} <= expected:
                    raise FeatvizError(OTHER_MODEL)
                for result in event.result:
                    keep(store, result)
            elif keys is not None and isinstance(keys[index], dict):
                for part, value in event.result.items():
                    keep(store, value, keys[index][part])
            elif keys is not None:
                keep(store, event.result, keys[index])
        yield index, event


Key = str | dict[str, str]  # a result's store key, or the keys of an item's parts ({part: key})


def _stored(store: Store | None, key: Key, shape: Any, valid: Callable[[Any], bool] | None) -> Any:
    """The stored value of `key` (of `shape`, `valid`), else None; for {part: key}, the {part: value}
    of the parts the store holds."""
    if isinstance(key, dict):
        found = {part: _stored(store, k, shape, valid) for part, k in key.items()}
        return {part: value for part, value in found.items() if value is not None}
    value = store.get_json(key, shape) if store is not None else None
    return value if value is not None and (valid is None or valid(value)) else None


def drive_cached(keyed: Sequence[tuple[Key, Work]], store: Store | None, source: ModelSource | None = None, *,
                 model: LoadedModel | None = None, ray: str | bool | None = None, workers: int | None = None,
                 shape: Any = None,
                 valid: Callable[[Any], bool] | None = None) -> Iterator[tuple[int, Step | Finished]]:
    """Look up, else run, store each result as it arrives: the one path of every job whose results are
    JSON (circuits, Grams, scan shards, concepts). `keyed` pairs each work item with its store key; a
    key the store holds (of `shape`, and `valid` when given) comes back first as (index,
    Finished(value, cached=True)), the rest run through `drive`, each result kept under its key the
    moment it finishes, so a killed job keeps every finished item. An item that finishes in parts (one
    forward pass that gives several layers' Grams) is keyed {part: key}: its stored parts come back
    first as {part: value}, and the item runs for the missing parts alone (`work.only(parts)`), each
    part stored as it finishes. Yields (index into `keyed`, event)."""
    todo, items, keys = [], [], []
    for index, (key, work) in enumerate(keyed):
        value = _stored(store, key, shape, valid)
        if isinstance(key, dict):
            if value:
                yield index, Finished(value, cached=True)
            missing = {part: k for part, k in key.items() if part not in value}
            if missing:
                todo.append(index)
                items.append(work.only(tuple(missing)) if len(missing) < len(key) else work)
                keys.append(missing)
        elif value is not None:
            yield index, Finished(value, cached=True)
        else:
            todo.append(index)
            items.append(work)
            keys.append(key)
    if not todo:
        return
    for index, event in drive(items, store, source, model=model, ray=ray, workers=workers, keys=keys):
        yield todo[index], event


def serve_cached(store: Store | None, targets: Sequence[Target],
                 keys: Sequence[str]) -> tuple[list[ChannelResult], list[tuple[Target, str]]]:
    """The store's pictures of these keys, and the (target, key) pairs it lacks, each key once."""
    cached, todo, queued = [], [], set()
    for target, key in zip(targets, keys):
        hit = store.get(key) if store is not None else None
        if hit is not None:
            cached.append(hit)
        elif key not in queued:
            queued.add(key)
            todo.append((target, key))
    return cached, todo


def drive_pictures(model: LoadedModel, targets: Sequence[Target], keys: Sequence[str],
                   make: Callable[[list[Target]], Work], steps: int, size: int, store: Store | None = None,
                   batch_size: int | None = None, previews: bool = False) -> Iterator[Progress]:
    """Pictures in this process: what the store has by key first (one event), then the rest in
    batches that fit in memory (`make` turns a batch's targets into its work item), storing each
    batch's results as it finishes. Every result appears exactly once in some event's `finished`."""
    cached, todo = serve_cached(store, targets, keys)
    total = len(todo) * steps
    yield Progress(0, total, finished=cached)
    if not todo:
        return
    # Shallow first, so batches mostly hold one depth and early ones stop the forward pass early.
    depth = model.depth
    todo.sort(key=lambda tk: depth(tk[0].layer))
    ordered = [t for t, _ in todo]
    queue = BatchQueue(ordered, batching_for(model, [t.layer for t in ordered], size, batch_size), make)
    done, start, current = 0, 0, None  # picture-steps finished; at the running item's start; its index
    for index, event in drive(queue, store, model=model, expected={k for _, k in todo}):
        if index != current:
            start, current = done, index
        if isinstance(event, Finished):
            done += len(event.result) * steps
            yield Progress(done, total, finished=event.result)
        elif event.cap is not None:  # out of GPU memory: the item goes on in halves, later batches too
            queue.lower(event.cap)
        else:
            yield Progress(start + event.done, total, preview=event.preview if previews else [])
