"""Which channels to show and sensible default layers. Pure functions (no Streamlit), easy to test.
The channel-list grammar is the core's (featviz_core.spec.parse_channels: the CLI reads the same)."""
from __future__ import annotations

from featviz_core.spec import (  # noqa: F401
    CHANNEL_SYNTAX,
    DEFAULT_CHANNELS,
    LOGITS,
    layers_for,
    parse_channels,
    stage_layers,
)


def default_layers(layers: list[str], objective: str = "channel") -> list[str]:
    """One early and one deep layer (lite0: blocks.1 and blocks.5); the logit objective needs 'logits'."""
    if objective == "logit":
        return layers_for(objective, layers)
    stages = stage_layers(layers) or [n for n in layers if n != LOGITS]
    early, deep = stages[round(0.25 * (len(stages) - 1))], stages[round(0.75 * (len(stages) - 1))]
    return [early] if early == deep else [early, deep]


def _depth(layer: str, layers: list[str]) -> float:
    """Where `layer` sits in its model, 0 (first stage) to 1 (last): its place among the stage layers,
    or for a sub-block among all layers."""
    stages = stage_layers(layers)
    order = stages if layer in stages else [n for n in layers if n != LOGITS]
    return order.index(layer) / max(1, len(order) - 1)


def paired_layers(chosen: list[str], layers: list[str], other: list[str]) -> list[str]:
    """For each chosen layer of one model (its layers `layers`), the layer of another model (`other`) at the
    same relative depth in the stage-layer list: lite0 blocks.5 -> lite2 blocks.5, VGG16 block4_conv3
    (features.21) -> ResNet-50 layer3. Logits pair with logits; no layer is given twice."""
    stages = stage_layers(other) or [n for n in other if n != LOGITS]
    paired = []
    for layer in chosen:
        if layer == LOGITS or layer not in layers:
            paired.append(layer if layer in other else None)
        elif stages:
            paired.append(stages[round(_depth(layer, layers) * (len(stages) - 1))])
    return list(dict.fromkeys(p for p in paired if p is not None))
