"""Everything that decides a dream (Deep Dream on a photo, feature accentuation), with its cache key."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from .. import config
from ..errors import FeatvizError, unknown_choice
from .settings import ALGORITHM_VERSION, check_common, check_whole
from .targets import Target

DREAM_VERSION = 2  # bump when a change to the recipe changes the dreams (2: the whole photo at its own shape)
DREAM_OBJECTIVES = ("layer", "channel", "logit")
KINDS = DREAM_OBJECTIVES
WHOLE_LAYER = -1  # the channel of a whole-layer target
OCTAVES_RANGE = (1, 8)
MAX_ACCENTUATE = 100.0
DREAM_SIZE_RANGE = (32, 10_000)  # the longer side; the host's megapixel limit (config.dream_pixels) decides the rest
MIN_SIDE = 8  # the shorter side of a very long photo's dream never goes below this


@dataclass(frozen=True)
class DreamSettings:
    """How to dream; shared by every target of a photo."""

    size: int = 224  # the longer side; the dream keeps the photo's shape
    steps: int = 60  # over all octaves
    octaves: int = 4
    seed: int = 0
    objective: str = "layer"
    accentuate: float = 0.0  # 0: a plain dream; > 0: feature accentuation of that strength
    guide: str | None = None  # a guide photo's digest: the layer's features grow towards the guide's

    def __post_init__(self) -> None:
        if self.objective not in KINDS:
            raise unknown_choice("dream objective", self.objective, KINDS)
        check_common(self, DREAM_SIZE_RANGE)
        if self.guide is not None and (self.objective != "layer" or not isinstance(self.guide, str)):
            raise FeatvizError("A guide photo guides a whole-layer dream: name a layer, not a channel or a class.")
        check_whole("octaves", self.octaves, OCTAVES_RANGE)
        if not isinstance(self.accentuate, (int, float)) or not 0 <= self.accentuate <= MAX_ACCENTUATE:
            raise FeatvizError(f"Accentuation strength {self.accentuate!r} is out of range: "
                               f"0 (off) to {MAX_ACCENTUATE:g}.")

    def with_(self, **changes) -> "DreamSettings":
        return replace(self, **changes)


@dataclass(frozen=True)
class DreamSpec:
    """One dream: a target of a model (by its weights digest) on a photo (by its pixel digest)."""

    model: str
    weights_digest: str
    photo_digest: str
    layer: str
    channel: int
    settings: DreamSettings

    def key(self) -> str:
        payload = {"v": ALGORITHM_VERSION, "dream": DREAM_VERSION, "model": self.model, "weights": self.weights_digest,
                   "photo": self.photo_digest, "layer": self.layer, "channel": self.channel,
                   **asdict(self.settings), "accentuate": float(self.settings.accentuate)}
        if payload["guide"] is None:
            del payload["guide"]  # unguided keys as before the guide existed
        return "dream:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def spec_for(model, photo_digest: str, target: Target, settings: DreamSettings) -> DreamSpec:
    """The spec of a dream; `model` is a LoadedModel or anything with its name and digest (the pages' ModelRef)."""
    return DreamSpec(model.name, model.digest, photo_digest, target.layer, target.channel, settings)


def dream_shape(photo_shape: tuple[int, ...], size: int) -> tuple[int, int]:
    """(height, width) of a dream of a photo of `photo_shape` (H, W, ...) whose longer side is `size`;
    a square photo dreams at size x size."""
    h, w = photo_shape[:2]
    if h >= w:
        return size, max(MIN_SIDE, round(size * w / h))
    return max(MIN_SIDE, round(size * h / w)), size


def largest_size(photo_shape: tuple[int, ...]) -> int:
    """The largest longer side a dream of this photo may have under the host's megapixel limit."""
    h, w = photo_shape[:2]
    size = int((config.dream_pixels() * max(h, w) / min(h, w)) ** 0.5)
    while size > DREAM_SIZE_RANGE[0] and _pixels(dream_shape(photo_shape, size)) > config.dream_pixels():
        size -= 1
    return max(DREAM_SIZE_RANGE[0], min(size, DREAM_SIZE_RANGE[1]))


def _pixels(shape: tuple[int, int]) -> int:
    return shape[0] * shape[1]


def check_dream_size(photo_shape: tuple[int, ...], size: int) -> tuple[int, int]:
    """The dream's (height, width), or FeatvizError when it is over the host's megapixel limit."""
    shape = dream_shape(photo_shape, size)
    limit = config.dream_pixels()
    if _pixels(shape) > limit:
        raise FeatvizError(f"A dream of {shape[1]} x {shape[0]} px is over this host's limit of {limit / 1e6:g} "
                           f"megapixels ({config.DREAM_MEGAPIXELS_ENV}): for this photo, a size up to "
                           f"{largest_size(photo_shape)}.")
    return shape
