"""Where work runs: work items on this process or on Ray actors (`run_work`, `run_events`).

Names are imported on first use (featviz_core/lazy.py)."""
from ..lazy import lazy_names

__getattr__, __dir__, __all__ = lazy_names(__name__, {
    ".dispatch": "run_events run_work",
    ".work": "CPU_BATCH CPU_THREADS Finished ModelSource Step Work",
})
