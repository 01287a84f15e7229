"""Where work runs: work items on this process or on Ray actors (`run_work`, `run_events`), and the
dashboard's render service (a queue shared by every visitor, served by worker threads)."""
from .dispatch import run_events, run_work
from .queueing import Batcher, Item, Snapshot, Update
from .service import RenderService
from .work import CPU_BATCH, CPU_THREADS, Finished, ModelSource, Step, Work

__all__ = ["run_events", "run_work", "Batcher", "Item", "Snapshot", "Update", "RenderService", "CPU_BATCH",
           "CPU_THREADS", "Finished", "ModelSource", "Step", "Work"]
