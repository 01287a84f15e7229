"""Everything that decides a picture, as frozen values with a stable digest and a URL form."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace

from ..config import BATCH_RANGE, SIZE_RANGE, STEPS_RANGE  # noqa: F401 (the settings' ranges, re-exported)
from ..errors import FeatvizError, unknown_choice
from .targets import OBJECTIVES

# Bump when a change to the algorithm changes the pictures: old cache entries then stop matching.
ALGORITHM_VERSION = 5

METHODS = ("fourier", "maco", "classic")
DEFAULT_METHOD = "fourier"
# bf16: the model's forward pass under CUDA autocast. Off by default: no GPU was at hand to check with
# the self-check that its pictures are as good (README, GPU). fp32 stays out of the cache key.
PRECISIONS = ("fp32", "bf16")
INITS = ("noise", "gray", "gradient")  # the starts that need nothing but their name
PHOTO = "photo"  # the start from a photo (RenderSettings.photo names it by digest)


def check_whole(name: str, value, valid: tuple[int, int]) -> None:
    """The one range check of a whole-number setting (settings, CLI options, host limits)."""
    lo, hi = valid
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise FeatvizError(f"{name.capitalize()} {value!r} is out of range: choose a whole number from {lo} to {hi}.")


def check_batch_size(value) -> None:
    """The one bound on pictures (or images) per batch; None: as many as fit in memory."""
    if value is not None:
        check_whole("batch size", value, BATCH_RANGE)


def check_common(settings, size_range: tuple[int, int] = SIZE_RANGE) -> None:
    """Size, steps and seed: the checks every kind of settings (renders, dreams) shares."""
    check_whole("size", settings.size, size_range)
    check_whole("steps", settings.steps, STEPS_RANGE)
    if isinstance(settings.seed, bool) or not isinstance(settings.seed, int) or settings.seed < 0:
        raise FeatvizError(f"Seed {settings.seed!r} must be a whole number >= 0.")


@dataclass(frozen=True)
class RenderSettings:
    """How to render; shared by every channel of a run."""

    method: str = DEFAULT_METHOD
    size: int = 224  # the benchmark's winner: Lite0's own input size (see README, Benchmark)
    steps: int = 64
    seed: int = 0
    init: str = "noise"
    objective: str = "channel"
    precision: str = "fp32"
    photo: str = ""  # with init "photo": the photo's digest (photos.photo_digest); the pixels travel beside

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise unknown_choice("method", self.method, METHODS)
        if self.init not in INITS + (PHOTO,):
            raise unknown_choice("starting image", self.init, INITS + (PHOTO,))
        if (self.init == PHOTO) != bool(self.photo) or not isinstance(self.photo, str):
            raise FeatvizError("A 'photo' starting image needs the photo's digest, and only it takes one.")
        if self.objective not in OBJECTIVES:
            raise unknown_choice("objective", self.objective, OBJECTIVES)
        if self.precision not in PRECISIONS:
            raise unknown_choice("precision", self.precision, PRECISIONS)
        check_common(self)

    def to_query(self) -> dict[str, str]:
        """Only the settings that differ from the defaults, as strings (short share links)."""
        default = RenderSettings()
        return {f.name: str(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    @classmethod
    def from_query(cls, query: dict[str, str]) -> "RenderSettings":
        """Inverse of to_query; unknown keys are ignored, bad values raise FeatvizError."""
        values = {}
        for f in fields(cls):
            if f.name in query:
                raw = query[f.name]
                if f.type in ("int", int):
                    try:
                        values[f.name] = int(raw)
                    except ValueError:
                        raise FeatvizError(f"{f.name.capitalize()} {raw!r} is not a whole number.") from None
                else:
                    values[f.name] = str(raw)
        return cls(**values)

    def with_(self, **changes) -> "RenderSettings":
        return replace(self, **changes)


@dataclass(frozen=True)
class RenderSpec:
    """One picture: a channel of a layer of a model (identified by its weights digest), rendered with settings."""

    model: str
    weights_digest: str
    layer: str
    channel: int
    settings: RenderSettings

    def key(self) -> str:
        """Stable digest of everything that decides the picture."""
        settings = asdict(self.settings)
        if settings["precision"] == "fp32":  # the default: keys made before the setting existed stay valid
            del settings["precision"]
        if not settings["photo"]:  # not started from a photo: the keys stay what they were before photos
            del settings["photo"]
        payload = {"v": ALGORITHM_VERSION, "model": self.model, "weights": self.weights_digest,
                   "layer": self.layer, "channel": self.channel, **settings}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
