"""Specs -> workers -> store: every batch job (atlas renders, dataset scans) is a list of work items
that a backend runs on workers holding the model; the driver, the only process that owns the store,
writes each result as it arrives.

    for index, result in run_work(ModelSource("lite0"), items, ray=True):
        ...  # results arrive in completion order, not request order

Backends: in this process (the default), or Ray actors (`ray=True` starts a local cluster,
`ray="ray://head:10001"` or `"auto"` joins an existing one; see ray_backend.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

from ..models.loading import LoadedModel, load_model

# On a CPU every worker renders with one torch thread: a picture's bits depend on the thread count
# (parallel reductions in the convolutions' backward pass), and a CPU batch is too small to keep two
# threads busy anyway: two single-threaded processes rendered Lite0's blocks.1 1.5x as fast as one
# process with two threads. More cores mean more workers (Ray actors), not more threads.
CPU_THREADS = 1
RAY_INSTALL_HINT = 'Ray is not installed: pip install "featviz[ray]" (or pip install "ray[client]==2.60.0").'


@dataclass(frozen=True)
class ModelSource:
    """A picklable recipe for a model; each worker loads it once.

    `name` is a registered name or package.module:factory; `weights` a local state-dict file on the
    driver (remote workers get its bytes through Ray's object store, never its path)."""

    name: str
    weights: str | None = None
    device: str = "auto"

    def load(self) -> LoadedModel:
        return load_model(self.name, device=self.device, weights=self.weights)


@runtime_checkable
class Work(Protocol):
    """A picklable item of work. `run` returns plain picklable data only (bytes, lists, small
    dataclasses): never torch tensors, which would pin device memory in Ray's object store."""

    units: int  # progress units it stands for (pictures, images)

    def run(self, model: LoadedModel) -> Any: ...


def run_work(source: ModelSource, items: Sequence[Work], ray: str | bool | None = None,
             workers: int | None = None, model: LoadedModel | None = None) -> Iterator[tuple[int, Any]]:
    """Run every item; yield (index into items, result) as each finishes.

    ray=None/False: in this process, one item after another (`model`, when the caller has already
    loaded `source`, saves loading it again). ray=True: a local Ray cluster started for this run;
    ray="ray://host:port" or "auto": an existing cluster. `workers`: how many Ray actors (default:
    one per GPU, or one per CPU core; see ray_backend.plan_actors)."""
    if not items:
        return
    if ray:
        from .ray_actors import run_on_ray  # imports ray lazily: it is an optional dependency

        yield from run_on_ray(source, items, ray, workers)
        return
    model = model or source.load()
    for index, item in enumerate(items):
        yield index, item.run(model)
