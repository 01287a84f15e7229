"""The only code that touches the cache directory: one diskcache entry per rendered channel.

Entries are plain bytes (JSON with base64 PNGs), never pickles, so a cache directory copied from
elsewhere cannot run code. An entry that cannot be read, or is not of the shape its reader expects,
is dropped and counts as a miss; a damaged database heals on opening (cache_repair.py).
"""
from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .. import config
from .repair import open_cache
from .uploads import cache_budget

DEFAULT_CACHE_DIR = config.DEFAULT_CACHE_DIR  # FEATVIZ_CACHE moves it (read when a Store opens, not at import)


def default_cache_dir() -> str:
    return config.cache_dir()


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def png_array(data: bytes) -> np.ndarray:
    arr = np.asarray(Image.open(io.BytesIO(data)))
    return arr[..., None] if arr.ndim == 2 else arr


@dataclass
class ChannelResult:
    """One rendered channel: the picture, its activation curve and its evolution snapshots."""

    layer: str
    channel: int
    png: bytes
    curve: list[float]  # objective value at every step
    snapshots: list[tuple[int, bytes]]  # (step, PNG) pairs, the last one the final picture
    seconds: float  # this channel's share of its batch's wall time
    dead: bool  # the objective never rose above zero: a filter this input cannot excite
    key: str = ""
    cached: bool = field(default=False, compare=False)

    @property
    def image(self) -> np.ndarray:
        return png_array(self.png)

    def _repr_png_(self) -> bytes:
        """In Jupyter, a result shows as its picture."""
        return self.png

    @property
    def label(self) -> str:
        return self.layer if self.channel < 0 else f"{self.layer}:{self.channel}"  # < 0: a whole layer (dreams)

    def to_bytes(self) -> bytes:
        doc = {"layer": self.layer, "channel": self.channel, "png": base64.b64encode(self.png).decode(),
               "curve": self.curve, "seconds": self.seconds, "dead": self.dead, "key": self.key,
               "snapshots": [[s, base64.b64encode(p).decode()] for s, p in self.snapshots]}
        return json.dumps(doc).encode()

    @classmethod
    def from_bytes(cls, data: bytes, snapshots: bool = True) -> "ChannelResult":
        """`snapshots=False`: the final picture stands for the evolution frames (a grid of pictures
        needs no more, and decoding every frame is most of the time a cached view spends here)."""
        doc = json.loads(data)
        png = base64.b64decode(doc["png"])
        frames = [(int(s), base64.b64decode(p)) for s, p in doc["snapshots"]] if snapshots \
            else [(int(doc["snapshots"][-1][0]), png)]
        return cls(doc["layer"], int(doc["channel"]), png, [float(v) for v in doc["curve"]], frames,
                   float(doc["seconds"]), bool(doc["dead"]), doc["key"], cached=True)


def matches(value, shape) -> bool:
    """Whether a JSON value has `shape`: a type (float takes any number, int no bool), {key: shape} (at
    least those keys), [shape] (a list of such items) or (shape, ...) (a list of exactly those)."""
    if isinstance(shape, dict):
        return isinstance(value, dict) and all(k in value and matches(value[k], s) for k, s in shape.items())
    if isinstance(shape, list):
        return isinstance(value, list) and all(matches(v, shape[0]) for v in value)
    if isinstance(shape, tuple):
        return isinstance(value, list) and len(value) == len(shape) and all(map(matches, value, shape))
    if isinstance(value, bool) and shape is not bool:
        return False
    return isinstance(value, (int, float) if shape is float else shape)


def _disk_class():
    import diskcache
    from diskcache.core import MODE_PICKLE

    class NoPickleDisk(diskcache.Disk):
        """Refuses to unpickle: featviz only ever writes bytes, so a pickled entry is foreign."""

        def fetch(self, mode, filename, value, read):
            if mode == MODE_PICKLE:
                raise ValueError("refusing to unpickle a cache entry")
            return super().fetch(mode, filename, value, read)

    return NoPickleDisk


class Store:
    """Size-capped, process-safe disk cache of ChannelResults (and small JSON blobs) by key."""

    def __init__(self, directory: str | None = None, size_limit: int | None = None):
        """`size_limit` defaults to FEATVIZ_CACHE_GB less the uploads' share (uploads.cache_budget).
        A damaged cache heals on opening (cache_repair); `notices` then says so, for people."""
        directory = directory or default_cache_dir()
        size_limit = cache_budget()[0] if size_limit is None else size_limit
        self.directory = directory
        self._cache, self.notices = open_cache(directory, size_limit=size_limit, eviction_policy="least-recently-used",
                                               disk=_disk_class())

    def _get_bytes(self, key: str) -> bytes | None:
        """The raw entry, or None; a foreign, pickled or unreadable entry is dropped (a miss)."""
        try:
            data = self._cache.get(key)
        except Exception:  # pickled (refused by the disk class) or unreadable file
            self._cache.delete(key)
            return None
        if data is not None and not isinstance(data, bytes):
            self._cache.delete(key)
            return None
        return data

    def get(self, key: str, snapshots: bool = True) -> ChannelResult | None:
        """The result stored under `key` (see ChannelResult.from_bytes for `snapshots`), or None."""
        data = self._get_bytes(key)
        if data is None:
            return None
        try:
            return ChannelResult.from_bytes(data, snapshots)
        except Exception:  # truncated or foreign entry: recompute rather than crash
            self._cache.delete(key)
            return None

    def put(self, result: ChannelResult) -> None:
        self._cache.set(result.key, result.to_bytes())

    def get_json(self, key: str, shape=None):
        """The JSON value, or None; one that is unreadable, or not of `shape` (see `matches`), is dropped."""
        data = self._get_bytes("json:" + key)
        try:
            value = None if data is None else json.loads(data)
        except (ValueError, TypeError):
            value = None
        if data is not None and (value is None or (shape is not None and not matches(value, shape))):
            self._cache.delete("json:" + key)
            return None
        return value

    def put_json(self, key: str, value) -> None:
        self._cache.set("json:" + key, json.dumps(value).encode())

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def volume(self) -> int:
        return self._cache.volume()

    @property
    def size_limit(self) -> int:
        """Bytes kept before least-recently-used entries are evicted."""
        return int(self._cache.size_limit)

    def close(self) -> None:
        self._cache.close()
