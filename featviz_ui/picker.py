"""Layer and channel pickers shared by the pages, bound to the URL, with link problems shown in place."""
from __future__ import annotations

import streamlit as st

from featviz_core import FeatvizError
from featviz_core.spec import (
    CHANNEL_SYNTAX,
    DEFAULT_CHANNELS,
    LOGITS,
    check_objective_layers,
    layers_for,
    parse_channels,
)

from . import urlstate
from .sidebar import View
from .targets import default_layers

ANY = "Listed layers first, then every other module of the model (type a name to find it)."


def resolve_linked(view: View, names: list[str]) -> list[str]:
    """The layers a link names, aliases mapped to layer names; each unknown one is noted with the valid layers."""
    valid = []
    for name in names:
        try:
            valid.append(view.ref.resolve_layer(name))
        except FeatvizError as exc:
            urlstate.note(f"The link names a layer this model does not have. {exc}", "error")
    return valid


def resolve_url_layers(view: View, key: str) -> None:
    """Map aliases in the link to layer names; name the valid layers for unknown ones."""
    raw = urlstate.raw_values(key)
    if not raw:
        return
    valid = resolve_linked(view, raw)
    if valid != raw:
        st.session_state[key] = valid


def layer_label(view: View, name: str) -> str:
    info = view.ref.info(name)
    alias = f" ({info.alias})" if info.alias else ""
    return f"{name}{alias} · {info.channels} ch"


def pick_layers(view: View, max_layers: int = 4, key: str = "layers", label: str = "Layers",
                default: list[str] | None = None) -> list[str]:
    """The chosen layers (URL key `key`), shallow to deep; `default`: one early and one deep layer.
    Offered: the listed layers, then every other module (type to find one)."""
    resolve_url_layers(view, key)
    default = default_layers(list(view.ref.layers), view.settings.objective) if default is None else default
    chosen = st.multiselect(label, view.ref.choices(), default=default, key=key, bind="query-params",
                            max_selections=max_layers, help=f"Two to four layers, shallow to deep, side by side. {ANY}")
    return sorted(objective_layers(view, chosen), key=view.ref.depth)


def objective_layers(view: View, chosen: list[str]) -> list[str]:
    """The chosen layers the objective can drive (the core's logit rule), saying so in place when the
    logit objective was given other layers: it shows the logits instead."""
    try:
        check_objective_layers(view.settings.objective, chosen)
        return chosen
    except FeatvizError as exc:
        st.info(f"{urlstate.plain(str(exc))} Showing layer {LOGITS!r} instead.")
        return layers_for(view.settings.objective, chosen) or [LOGITS]


def pick_layer(view: View) -> str:
    """One layer (gallery, evolution): the early default layer, or 'logits' for the logit objective."""
    layers = view.ref.choices()
    resolve_url_layers(view, "layer")
    if isinstance(st.session_state.get("layer"), list):  # set from a link by resolve_url_layers
        resolved = st.session_state.pop("layer")
        if resolved:
            st.session_state["layer"] = resolved[0]
    default = default_layers(list(view.ref.layers), view.settings.objective)[0]
    # No format_func on bound widgets: the URL would carry the formatted label instead of the name.
    layer = st.selectbox("Layer", layers, index=layers.index(default), key="layer", bind="query-params", help=ANY)
    layer = objective_layers(view, [layer])[0]
    st.caption(layer_label(view, layer))
    return layer


def pick_channels(view: View, layer: str, label: str | None = None, prefix: str = "ch") -> list[int]:
    """The channel list for one layer, URL key `prefix.layer` (empty after showing an error the user can fix
    in place)."""
    key = f"{prefix}.{layer}"
    text = st.text_input(label or "Channels", DEFAULT_CHANNELS, key=key, bind="query-params", help=CHANNEL_SYNTAX)
    try:
        return parse_channels(text, view.ref.info(layer).channels, view.settings.seed, layer)
    except FeatvizError as exc:
        st.error(urlstate.plain(str(exc)))  # it quotes what was typed, or what the link said
        return []
