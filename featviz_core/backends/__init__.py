"""Where work runs: work items on this process or on Ray actors (`run_work`, `run_events`), and the
dashboard's render service (a queue shared by every visitor, served by worker threads).

Names are imported on first use (featviz_core/lazy.py)."""
from ..lazy import lazy_names

__getattr__, __dir__, __all__ = lazy_names(__name__, {
    ".dispatch": "run_events run_work",
    ".queueing": "Batcher Item Snapshot Update",
    ".service": "RenderService",
    ".work": "CPU_BATCH CPU_THREADS Finished ModelSource Step Work",
})
