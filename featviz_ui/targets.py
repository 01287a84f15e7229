"""Which channels to show and sensible default layers. Pure functions (no Streamlit), easy to test.
The channel-list grammar is the core's (featviz_core.spec.parse_channels: the CLI reads the same)."""
from __future__ import annotations

from featviz_core.spec import CHANNEL_SYNTAX, DEFAULT_CHANNELS, LOGITS, layers_for, parse_channels  # noqa: F401


def stage_layers(layers: list[str]) -> list[str]:
    """Layers that are not sub-blocks of another listed layer (lite0: bn1, blocks.0 … blocks.6, bn2)."""
    listed = set(layers)
    return [n for n in layers if n != LOGITS and not any(n.startswith(p + ".") for p in listed)]


def default_layers(layers: list[str], objective: str = "channel") -> list[str]:
    """One early and one deep layer (lite0: blocks.1 and blocks.5); the logit objective needs 'logits'."""
    if objective == "logit":
        return layers_for(objective, layers)
    stages = stage_layers(layers) or [n for n in layers if n != LOGITS]
    early, deep = stages[round(0.25 * (len(stages) - 1))], stages[round(0.75 * (len(stages) - 1))]
    return [early] if early == deep else [early, deep]
