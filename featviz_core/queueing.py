"""Pure rules of the render queue (service.py): the round robin order and the wait estimate."""
from __future__ import annotations

from typing import Hashable, Sequence


def interleave(lists: Sequence[Sequence[str]]) -> list[tuple[int, str]]:
    """Round robin over the visitors' lists (the next visitor first): the first picture of each, then
    the second of each, and so on, as (list index, key). A key several visitors want is taken once,
    at its earliest place."""
    order, taken = [], set()
    for depth in range(max(map(len, lists), default=0)):
        for index, keys in enumerate(lists):
            if depth < len(keys) and keys[depth] not in taken:
                taken.add(keys[depth])
                order.append((index, keys[depth]))
    return order


def wait_estimate(queued, running, rates: dict[Hashable, float], workers: int) -> float | None:
    """Seconds until the `queued` items (in order, up to the visitor's last) and the `running` ones
    ((item, steps done) pairs) are done, from measured seconds per picture-step by batcher key (a kind
    not yet measured takes the mean of the others). None before anything was measured."""
    if not rates:
        return None
    fallback = sum(rates.values()) / len(rates)

    def rate(item) -> float:
        return rates.get(item.batcher.key, fallback)

    work = sum(rate(i) * i.steps for i in queued) + sum(rate(i) * max(0, i.steps - done) for i, done in running)
    return work / max(1, workers)
