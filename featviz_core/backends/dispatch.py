"""Work items -> a backend: this process (local.py) or Ray actors (ray_actors.py), chosen per run.

    for index, event in run_events(ModelSource("lite0"), items, ray=True):
        ...  # Finished results arrive in completion order, not request order

`ray=True` starts a local cluster, `ray="ray://head:10001"` or `"auto"` joins an existing one.
The driver (jobs/driver.py), the only process that owns the store, writes each result as it arrives.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..models.loading import LoadedModel
from .local import run_here
from .ray_actors import run_on_ray
from .work import Finished, ModelSource, Step, Work


def run_events(source: ModelSource | None, items: Iterable[Work], ray: str | bool | None = None,
               workers: int | None = None, model: LoadedModel | None = None) -> Iterator[tuple[int, Step | Finished]]:
    """Run every item; yield (index into items, event) as each reports.

    ray=None/False: in this process, one item after another, streaming each item's Steps (`model`,
    when the caller has already loaded `source`, saves loading it again). ray=True: a local Ray
    cluster started for this run; ray="ray://host:port" or "auto": an existing cluster; there each
    item yields one Finished. `workers`: how many Ray actors (default: one per GPU, or one per CPU
    core; see ray_actors.plan_actors)."""
    if ray:
        items = list(items)
        if items:
            yield from run_on_ray(source, items, ray, workers)  # imports ray lazily: an optional dependency
        return
    if model is None:
        items = iter(items)
        first = next(items, None)
        if first is None:
            return  # nothing to do: no model to load
        model = source.load()
        items = _chain(first, items)
    yield from run_here(model, items)


def _chain(first: Work, rest: Iterator[Work]) -> Iterator[Work]:
    yield first
    yield from rest


def run_work(source: ModelSource, items: Iterable[Work], ray: str | bool | None = None,
             workers: int | None = None, model: LoadedModel | None = None) -> Iterator[tuple[int, Any]]:
    """Run every item; yield (index into items, result) as each finishes (see run_events). An item
    that finishes in parts yields each part under its index."""
    for index, event in run_events(source, items, ray, workers, model):
        if isinstance(event, Finished):
            yield index, event.result
