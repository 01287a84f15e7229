"""The dashboard's render service: one queue shared by every visitor of a server process, served by
worker threads (`RenderService`); what it queues are `Item`s, batched by a `Batcher` (the picture
kinds that batch them are jobs/channels.py's).

Names are imported on first use (featviz_core/lazy.py)."""
from ..lazy import lazy_names

__getattr__, __dir__, __all__ = lazy_names(__name__, {
    ".queueing": "Batcher Item Snapshot Update",
    ".service": "RenderService",
})
