"""Batch jobs through the one driver (driver.py: serve what is cached, run the rest, store each result
as it arrives): channel renders, dreams, whole-model atlases, and the render service's picture kinds.

Names are imported on first use (featviz_core/lazy.py)."""
from ..lazy import lazy_names

__getattr__, __dir__, __all__ = lazy_names(__name__, {
    ".atlas": "AtlasPlan atlas_layers check_room estimated_entry_bytes plan_atlas run_atlas workers_batching",
    ".batching": "Batching BatchQueue batching_for max_batch mixes_layers plan_batches snapshot_steps",
    ".channels": "ChannelBatcher PictureKind channel_items channel_kind dream_kind",
    ".dreams": "dream_channels dream_targets",
    ".driver": "Progress drive drive_pictures keep",
    ".pictures": "DreamBatch RenderBatch spec_for",
    ".runner": "collect render_channels resolve_targets",
})
