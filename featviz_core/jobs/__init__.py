"""Batch jobs through the one driver (driver.py: serve what is cached, run the rest, store each result
as it arrives): channel renders, dreams, whole-model atlases, and the render service's picture kinds."""
from .atlas import AtlasPlan, atlas_layers, check_room, estimated_entry_bytes, plan_atlas, run_atlas, workers_batching
from .batching import Batching, batching_for, max_batch, mixes_layers, plan_batches, snapshot_steps
from .channels import ChannelBatcher, PictureKind, channel_items, channel_kind, dream_kind
from .dreams import dream_channels, dream_targets
from .driver import Progress, drive, drive_pictures, keep
from .pictures import DreamBatch, RenderBatch, spec_for
from .runner import collect, render_channels, resolve_targets

__all__ = ["AtlasPlan", "atlas_layers", "check_room", "estimated_entry_bytes", "plan_atlas", "run_atlas",
           "workers_batching", "Batching", "batching_for", "max_batch", "mixes_layers", "plan_batches",
           "snapshot_steps", "ChannelBatcher", "PictureKind", "channel_items", "channel_kind", "dream_kind",
           "dream_channels", "dream_targets", "Progress", "drive", "drive_pictures", "keep", "DreamBatch",
           "RenderBatch", "spec_for", "collect", "render_channels", "resolve_targets"]
