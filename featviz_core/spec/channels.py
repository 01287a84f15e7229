"""The one channel-list grammar of every entry point (CLI `--channels`, the dashboard's channel boxes,
share links). A channel list is one of
  "all"          every channel of the layer
  "first 8"      the first N channels
  "random 8"     N channels drawn with the run seed and the layer (the same link shows the same channels)
  "0-7,12"       explicit channels and ranges (duplicates dropped, order kept)
Each number is checked against the layer before a range is expanded, and a run holds at most
MAX_CHANNELS_PER_RUN channels, so "0-9999999999" fails at once instead of building a list."""
from __future__ import annotations

import hashlib
import re

import numpy as np

from ..errors import FeatvizError

MAX_CHANNELS_PER_RUN = 4096
CHANNEL_SYNTAX = 'Channels: "first 8", "random 8" (seeded), "all", or a list such as "0-7,12".'
DEFAULT_CHANNELS = "first 8"
_MODE = re.compile(r"(first|random)\s*:?\s*([0-9]+)")
_SPAN = re.compile(r"([0-9]+)\s*(?:-\s*([0-9]+))?")


def parse_channels(text: str, count: int, seed: int = 0, layer: str = "") -> list[int]:
    """Channels named by `text` for a layer with `count` channels; FeatvizError says what is wrong."""
    text = (text or "").strip().lower()
    where = f" of layer {layer!r}" if layer else ""
    if text == "all":
        return _first(count, count, where)
    mode = _MODE.fullmatch(text)
    if mode:
        n = _number(mode.group(2), count + 1, where, count, what="pick")
        if n < 1:
            raise FeatvizError(f"Cannot pick 0 channels{where}: {_valid(count)}.")
        return _first(n, count, where) if mode.group(1) == "first" else random_channels(n, count, seed, layer)
    channels: dict[int, None] = {}
    expanded = 0  # with repeats: the work a list costs is bounded, not only its length
    for part in filter(None, (p.strip() for p in text.split(","))):
        span = _SPAN.fullmatch(part)
        if not span:
            raise FeatvizError(f"Cannot read {part!r} in the channel list{where}. {CHANNEL_SYNTAX}")
        lo, hi = (_number(d, count, where, count) for d in (span.group(1), span.group(2) or span.group(1)))
        if hi < lo:
            raise FeatvizError(f"Channel range {part!r}{where} runs backwards: write it as {hi}-{lo}.")
        expanded += hi - lo + 1
        if expanded > MAX_CHANNELS_PER_RUN:
            raise _too_many(count, where)
        channels.update(dict.fromkeys(range(lo, hi + 1)))
    if not channels:
        raise FeatvizError(f"No channels given{where}. {CHANNEL_SYNTAX}")
    return list(channels)


def random_channels(n: int, count: int, seed: int, layer: str) -> list[int]:
    """`n` of `count` channels, seeded by the run seed and the layer (one layer's draw does not depend
    on the others'), sorted: the draw a share link shows, so it must never change."""
    digest = hashlib.sha256(f"{seed}|{layer}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return sorted(int(c) for c in rng.choice(count, size=n, replace=False))


def _valid(count: int) -> str:
    return f"the layer has {count} channels (0-{count - 1})"


def _first(n: int, count: int, where: str) -> list[int]:
    if n > MAX_CHANNELS_PER_RUN:
        raise _too_many(count, where)
    return list(range(n))


def _too_many(count: int, where: str) -> FeatvizError:
    return FeatvizError(f"Too many channels in one run{where} (at most {MAX_CHANNELS_PER_RUN}); {_valid(count)}.")


def _number(digits: str, bound: int, where: str, count: int, what: str = "") -> int:
    """`digits` as a number below `bound`; the length is checked first: int() of a huge string is itself slow."""
    if len(digits) > 9 or int(digits) >= bound:
        if what:
            raise FeatvizError(f"Cannot pick {digits} channels{where}: {_valid(count)}.")
        raise FeatvizError(f"Channel {digits} is out of range{where}: {_valid(count)}.")
    return int(digits)
