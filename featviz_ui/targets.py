"""Which channels to show: the channel-list syntax of the pages and sensible default layers.

Pure functions (no Streamlit) so they are easy to test. A channel list is one of
  "first 8"      the first N channels
  "random 8"     N channels drawn with the run seed (the same link shows the same channels)
  "0-7,12"       explicit channels and ranges
"""
from __future__ import annotations

import hashlib
import re

import numpy as np

from featviz_core import FeatvizError
from featviz_core.models.hooks import LOGITS

CHANNEL_SYNTAX = 'Channels: "first 8", "random 8" (seeded) or a list such as "0-7,12".'
DEFAULT_CHANNELS = "first 8"


def parse_channels(text: str, count: int, seed: int = 0, layer: str = "") -> list[int]:
    """Channels named by `text` for a layer with `count` channels; FeatvizError says what is wrong."""
    text = (text or "").strip().lower()
    where = f" of layer {layer!r}" if layer else ""
    mode = re.fullmatch(r"(first|random)\s*:?\s*(\d+)", text)
    if mode:
        n = int(mode.group(2))
        if not 1 <= n <= count:
            raise FeatvizError(f"Cannot pick {n} channels{where}: it has {count} (0-{count - 1}).")
        if mode.group(1) == "first":
            return list(range(n))
        # Seeded by the run seed and the layer, so one layer's draw does not depend on the others.
        digest = hashlib.sha256(f"{seed}|{layer}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        return sorted(int(c) for c in rng.choice(count, size=n, replace=False))
    channels: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        span = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", part)
        if not span:
            raise FeatvizError(f"Cannot read {part!r} in the channel list{where}. {CHANNEL_SYNTAX}")
        lo, hi = int(span.group(1)), int(span.group(2) or span.group(1))
        if lo > hi:
            raise FeatvizError(f"Range {part!r}{where} runs backwards: write it as {hi}-{lo}.")
        if hi >= count:
            raise FeatvizError(f"Channel {hi} is out of range{where}: it has {count} channels (0-{count - 1}).")
        channels += [c for c in range(lo, hi + 1) if c not in channels]
    if not channels:
        raise FeatvizError(f"No channels given{where}. {CHANNEL_SYNTAX}")
    return channels


def stage_layers(layers: list[str]) -> list[str]:
    """Layers that are not sub-blocks of another listed layer (lite0: bn1, blocks.0 … blocks.6, bn2)."""
    listed = set(layers)
    return [n for n in layers if n != LOGITS and not any(n.startswith(p + ".") for p in listed)]


def default_layers(layers: list[str], objective: str = "channel") -> list[str]:
    """One early and one deep layer (lite0: blocks.1 and blocks.5); the logit objective needs 'logits'."""
    if objective == "logit":
        return [LOGITS] if LOGITS in layers else []
    stages = stage_layers(layers) or [n for n in layers if n != LOGITS]
    early, deep = stages[round(0.25 * (len(stages) - 1))], stages[round(0.75 * (len(stages) - 1))]
    return [early] if early == deep else [early, deep]


def layer_options(layers: list[str], objective: str) -> list[str]:
    """Layers the objective can drive: class logits only for "logit", feature maps otherwise."""
    if objective == "logit":
        return [n for n in layers if n == LOGITS]
    return [n for n in layers if n != LOGITS]
