"""What the backends run: a `Work` item (picklable, plain data in and out), the events it reports,
and where its model comes from. A leaf: the in-process backend (local.py), the Ray backend
(ray_actors.py) and the dispatcher above both (dispatch.py) all import it, it imports neither.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..models.loading import LoadedModel, load_model

# On a CPU every worker renders with one torch thread: a picture's bits depend on the thread count
# (parallel reductions in the convolutions' backward pass), and a CPU batch is too small to keep two
# threads busy anyway: two single-threaded processes rendered Lite0's blocks.1 1.5x as fast as one
# process with two threads. More cores mean more workers (Ray actors), not more threads.
CPU_THREADS = 1
# The most pictures in a CPU batch (jobs.batching.max_batch), and so a visitor's turn in the render
# queue (queueing.TURN): one CPU batch.
CPU_BATCH = 8
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
    dataclasses): never torch tensors, which would pin device memory in Ray's object store.

    An item may also have `stream(model)`: a generator of `Step`s and `Finished`s (its result, in
    one or more parts) that the in-process backend runs instead of `run`, so a page can show how
    far a batch has got; Ray, whose calls return once, runs `run`."""

    units: int  # progress units it stands for (pictures, images)

    def run(self, model: LoadedModel) -> Any: ...


@dataclass
class Step:
    """How far an item has got (in-process only): `done` of its progress-steps (a render batch:
    optimization steps times pictures), its pictures so far, and a lowered batch cap when the item
    had to halve its batch for want of GPU memory (the driver's later batches follow it)."""

    done: int
    preview: list[tuple[str, Any]] = field(default_factory=list)
    cap: int | None = None


@dataclass
class Finished:
    """An item's result, or a part of it (an item that halved its batch finishes in parts); `cached`:
    served from the store by the driver, not run."""

    result: Any
    cached: bool = False
