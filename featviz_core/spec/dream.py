"""Everything that decides a dream (Deep Dream on a photo, feature accentuation), with its cache key."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from ..errors import FeatvizError, unknown_choice
from .settings import ALGORITHM_VERSION, check_common, check_whole
from .targets import Target

DREAM_VERSION = 1  # bump when a change to the recipe changes the dreams
DREAM_OBJECTIVES = ("layer", "channel", "logit")
KINDS = DREAM_OBJECTIVES
WHOLE_LAYER = -1  # the channel of a whole-layer target
OCTAVES_RANGE = (1, 8)
MAX_ACCENTUATE = 100.0


@dataclass(frozen=True)
class DreamSettings:
    """How to dream; shared by every target of a photo."""

    size: int = 224
    steps: int = 60  # over all octaves
    octaves: int = 4
    seed: int = 0
    objective: str = "layer"
    accentuate: float = 0.0  # 0: a plain dream; > 0: feature accentuation of that strength

    def __post_init__(self) -> None:
        if self.objective not in KINDS:
            raise unknown_choice("dream objective", self.objective, KINDS)
        check_common(self)
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
        return "dream:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def spec_for(model, photo_digest: str, target: Target, settings: DreamSettings) -> DreamSpec:
    """The spec of a dream; `model` is a LoadedModel or anything with its name and digest (the pages' ModelRef)."""
    return DreamSpec(model.name, model.digest, photo_digest, target.layer, target.channel, settings)
