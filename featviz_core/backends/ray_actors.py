"""Ray backend for dispatch.run_work: actors that load the model once and run work items.

Imported only when a run asks for Ray (an optional dependency). One actor per GPU; on CPUs one
single-threaded actor per core, because a CPU batch is small (at most work.CPU_BATCH pictures, see
jobs.batching.max_batch) and its ops do not keep two threads busy: two single-threaded processes rendered
blocks.1 of Lite0 1.5x as fast as one process with two threads. An actor that dies is restarted
(its model loaded again) and its unfinished calls re-run; results are plain data, never tensors.
"""
from __future__ import annotations

import tempfile
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

from ..errors import FeatvizError
from .work import CPU_THREADS, RAY_INSTALL_HINT, Finished, ModelSource, Work

IN_FLIGHT = 2  # calls queued per actor, so it starts the next batch while the driver stores the last


def import_ray():
    """The ray module, or a FeatvizError that says how to install it (Ray is an optional extra)."""
    try:
        import ray
    except ImportError:
        raise FeatvizError(RAY_INSTALL_HINT) from None
    return ray


@dataclass(frozen=True)
class ActorPlan:
    count: int
    num_cpus: float  # Ray resources each actor reserves
    num_gpus: float
    threads: int  # torch threads inside each actor (GPU actors: the host side needs one)


def plan_actors(resources: dict[str, float], device: str, workers: int | None = None) -> ActorPlan:
    """How many actors, with what share of the cluster: one per GPU unless the device is the CPU,
    else one per CPU core. `workers` overrides the count. CPU actors always run one torch thread
    (CPU_THREADS), so a picture has the same bits whichever backend and worker count rendered it."""
    if workers is not None and workers < 1:
        raise FeatvizError(f"Workers {workers!r} must be a whole number >= 1.")
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if gpus and device != "cpu":
        count = workers or gpus
        return ActorPlan(count, min(1.0, cpus / count), min(1.0, gpus / count), 1)
    if device.startswith("cuda"):
        raise FeatvizError(f"Device {device!r} was asked for but the Ray cluster has no GPU. "
                           "Valid devices there: auto, cpu.")
    count = workers or cpus
    return ActorPlan(count, min(1.0, cpus / count), 0, CPU_THREADS)


class ModelWorker:
    """A Ray actor: loads the model once (weights arrive as bytes), then runs work items on it."""

    def __init__(self, source: ModelSource, weights: bytes | None, threads: int):
        import torch

        torch.set_num_threads(threads)
        if weights is not None:
            # Shipped through the object store: the driver's path does not exist on this node.
            self._weights = tempfile.NamedTemporaryFile(prefix="featviz-weights-", suffix=".pt")
            self._weights.write(weights)
            self._weights.flush()
            source = replace(source, weights=self._weights.name)
        self.model = source.load()

    def run(self, item: Work) -> Any:
        return item.run(self.model)


@contextmanager
def connected(address: str | bool):
    """Ray connected for the run: an existing connection is used as is; True starts a local
    cluster for this run; an address ("ray://head:10001", "auto", "host:6379") joins that cluster.
    What this opened, it shuts down."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        if address is True:
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=str(address), log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise FeatvizError(f"Cannot reach a Ray cluster at {address!r} ({type(exc).__name__}: {str(exc)[:200]}). "
                           "Start one with `ray start --head`, or pass --ray alone for a local cluster.") from None
    try:
        yield ray
    finally:
        ray.shutdown()


MAX_RESTARTS = 16  # per worker, over a whole run
MAX_BATCH_RETRIES = 3


def start_actors(ray, source: ModelSource, workers: int | None) -> tuple[list, Any]:
    """The actors, and the weights' object reference: the caller holds it for the whole run, since
    an actor restarted after a crash reads its constructor arguments from the object store again."""
    plan = plan_actors(ray.cluster_resources(), source.device, workers)
    weights = None
    if source.weights:
        with open(source.weights, "rb") as f:
            weights = ray.put(f.read())
    # A dead worker is replaced and its batch rerun, but not forever: a batch that kills its worker
    # (out of host memory, a crash in a kernel) three times fails with a message instead of hanging.
    actor = ray.remote(ModelWorker).options(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus,
                                            max_restarts=MAX_RESTARTS, max_task_retries=MAX_BATCH_RETRIES)
    return [actor.remote(source, weights, plan.threads) for _ in range(plan.count)], weights


def worker_error(exc: Exception) -> FeatvizError:
    """What a worker raised, as the message a person reads: a FeatvizError's own text, else the last
    line of Ray's report (never its remote traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, FeatvizError):
        return FeatvizError(str(cause))
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return FeatvizError(f"A Ray worker failed: {lines[-1][:300] if lines else type(exc).__name__}")


def run_on_ray(source: ModelSource, items: Sequence[Work], address: str | bool,
               workers: int | None = None) -> Iterator[tuple[int, Any]]:
    """dispatch.run_work on Ray: yields (index, Finished(result)) as each item finishes, feeding
    each actor the next item as it hands one back."""
    with connected(address) as ray:
        actors, _weights = start_actors(ray, source, workers)
        queue, pending = deque(range(len(items))), {}

        def submit(actor) -> None:
            if queue:
                index = queue.popleft()
                pending[actor.run.remote(items[index])] = (index, actor)

        try:
            for _ in range(IN_FLIGHT):
                for actor in actors:
                    submit(actor)
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                index, actor = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise worker_error(exc) from None
                submit(actor)
                yield index, Finished(result)
        finally:
            for actor in actors:
                ray.kill(actor)
