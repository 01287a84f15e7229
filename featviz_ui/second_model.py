"""Model against model (Compare, Curves): a second model beside the sidebar's, with the same render settings.

All of it is in the link: `model2` (the second model, with its packaged weights), `layers2` (its layers;
by default those at the same relative depth as the first model's, targets.paired_layers) and
`ch2.<layer>` (its channel lists). Without `model2` a page shows one model, as before.
"""
from __future__ import annotations

from dataclasses import replace

import streamlit as st

from featviz_core import FeatvizError

from . import urlstate
from .config import model_choices
from .models import model_ref
from .picker import pick_layers
from .sidebar import View
from .targets import paired_layers

MODEL2, LAYERS2, CHANNELS2 = "model2", "layers2", "ch2"  # URL keys


def pick_second_model(view: View) -> View | None:
    """The second model's view (the first one's settings, cache and caps), or None: none chosen (the default),
    or it could not be loaded (then the page says why)."""
    choices = list(model_choices())
    urlstate.check_choice(MODEL2, choices, "second model", "none")
    name = st.selectbox("Compare with another model", choices, index=None, key=MODEL2, bind="query-params",
                        placeholder="None: layers of one model",
                        help="Its layers side by side with the first model's, rendered with the same settings.")
    if name is None:
        return None
    try:
        return replace(view, ref=model_ref(name))
    except FeatvizError as exc:
        st.error(urlstate.plain(f"Could not load {name}. {exc}"))
    return None


def pick_second_layers(view: View, second: View, layers: list[str]) -> list[str]:
    """The second model's layers, offered at the same relative depth as the first model's `layers`."""
    default = paired_layers(layers, list(view.ref.layers), list(second.ref.layers))
    return pick_layers(second, key=LAYERS2, label=f"Layers of {second.ref.name}", default=default)


def model_names(view: View, second: View | None) -> tuple[str, str]:
    """What names each model's columns and tiles: nothing with one model (the captions stay as they were)."""
    return (view.ref.name, second.ref.name) if second is not None else ("", "")

