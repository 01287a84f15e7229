"""The in-process backend: work items one after another on a model this process holds, streaming
what each reports (`Step`s with previews) as it goes."""
from __future__ import annotations

from typing import Iterable, Iterator

from ..models.loading import LoadedModel
from .work import Finished, Step, Work


def run_here(model: LoadedModel, items: Iterable[Work]) -> Iterator[tuple[int, Step | Finished]]:
    """(index, event) for every item in turn: its stream's events where it has one, else one
    `Finished` with what `run` returned. `items` is read lazily, one item after the last finished,
    so a driver may still re-plan the items it has not handed out."""
    for index, item in enumerate(items):
        stream = getattr(item, "stream", None)
        if stream is None:
            yield index, Finished(item.run(model))
            continue
        for event in stream(model):
            yield index, event
