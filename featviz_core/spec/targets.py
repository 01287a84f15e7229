"""What a picture is of: a target (a channel of a layer, a class of the logits), and the one rule of
which objective drives which layers. Every entry point (library, CLI, dashboard) checks through here,
so the same bad request gets the same message wherever it comes from."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from ..errors import FeatvizError

LOGITS = "logits"  # pseudo-layer: the model's output; its "channels" are class indices
OBJECTIVES = ("channel", "neuron", "logit")  # what a render maximizes
LOGIT_RULE = f"The logit objective needs layer {LOGITS!r} (channels are class indices)"


@dataclass(frozen=True)
class Target:
    """One picture's goal: a channel of a layer (a class index when layer is LOGITS)."""

    layer: str
    channel: int

    def __str__(self) -> str:
        return self.layer if self.channel < 0 else f"{self.layer}:{self.channel}"  # < 0: a whole layer (dreams)


def parse_target(text: str) -> tuple[Target, float]:
    """`"blocks.3:5"` -> (Target("blocks.3", 5), +1); a leading '-' gives weight -1."""
    sign = -1.0 if text.startswith("-") else 1.0
    layer, sep, channel = text.lstrip("-").rpartition(":")
    if not sep or not layer or not re.fullmatch(r"[0-9]+", channel.strip()):
        raise FeatvizError(f"Cannot read objective {text!r}: expected 'layer:channel', "
                           "e.g. 'blocks.3:5' or '-blocks.3:5'.")
    return Target(layer, int(channel)), sign


def check_objective_layers(objective: str, layers: Iterable[str]) -> None:
    """The one logit rule: the logit objective drives the logits only (its channels are classes)."""
    wrong = [layer for layer in layers if layer != LOGITS] if objective == "logit" else []
    if wrong:
        raise FeatvizError(f"{LOGIT_RULE}, not {wrong[0]!r}.")


def layers_for(objective: str, layers: Iterable[str]) -> list[str]:
    """The layers `objective` may drive, in their order (what a layer picker lists): by the same rule."""
    return [layer for layer in layers if objective != "logit" or layer == LOGITS]
