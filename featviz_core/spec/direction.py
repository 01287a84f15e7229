"""The cache key of a picture that climbs a direction of a layer (a concept) rather than a channel:
the render spec of its (layer, concept index) with the rounded direction and the objective's cosine
power, so another direction, or the same one learned again with other numbers, is another picture."""
from __future__ import annotations

import hashlib
import json
from typing import Sequence

from .settings import RenderSpec

DIRECTION_DECIMALS = 4  # a direction's rounding in its key: learned twice alike, it keeps its pictures


def direction_digest(direction: Sequence[float]) -> str:
    """Names a direction by its values rounded to DIRECTION_DECIMALS (-0.0 read as 0.0)."""
    rounded = [round(float(v), DIRECTION_DECIMALS) + 0.0 for v in direction]
    return hashlib.sha256(json.dumps(rounded).encode()).hexdigest()[:24]


def direction_key(spec: RenderSpec, direction: Sequence[float], power: float = 0.0) -> str:
    """The store key of the picture `spec` names with its channel read as a concept index (its random
    stream), climbing `direction` with cosine power `power`."""
    payload = {"render": spec.key(), "direction": direction_digest(direction), "power": float(power)}
    return "dir-" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
