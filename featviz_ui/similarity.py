"""The Layer similarity page's drawing: linear CKA between the chosen layers of the sidebar's model, as a
heatmap whose cells open Compare with their two layers.

The matrix is the core's `cka_matrix` (a batch job through the driver, kept in the store) over the natural
photos at SIMILARITY_PX with one crop each; a matrix in the store is read by key without the model.
"""
from __future__ import annotations

from types import SimpleNamespace

import plotly.graph_objects as go
import streamlit as st

from featviz_core import FeatvizError, Store
from featviz_core.analysis import PhotoSet, cka_matrix, similarity_key
from featviz_core.store import lookup_json

from . import urlstate
from .models import ModelRef
from .picker import resolve_linked
from .sidebar import View
from .targets import stage_layers
from .waiting import progress_bar

SIMILARITY_PX = 128
PHOTOS = PhotoSet(size=SIMILARITY_PX, crops=1)  # 14 photos and a crop of each
LAYERS_KEY = "cka"  # the page's own layers, in the URL (one comma-separated value)
CHART_KEY = "cka_map"
COMPARE = "pages/compare.py"


def default_layers(ref: ModelRef) -> list[str]:
    return stage_layers(list(ref.layers)) or [n for n in ref.layers][:8]


def _stored(ref: ModelRef, layers: list[str], store: Store) -> list[list[float]] | None:
    card = SimpleNamespace(digest=ref.digest, in_channels=3)  # RGB models: a greyscale one's key simply misses
    doc = lookup_json(store, similarity_key(card, layers, card, layers, PHOTOS), {"cka": [[float]]},
                      valid=lambda d: len(d["cka"]) == len(layers))
    return None if doc is None else doc["cka"]


def matrix(ref: ModelRef, layers: list[str], store: Store) -> list[list[float]]:
    """CKA between `layers`, from the store or measured with a progress bar. Raises FeatvizError."""
    cached = _stored(ref, layers, store)
    if cached is not None:
        return cached
    with st.status(f"Measuring CKA between {len(layers)} layers on natural photos ({SIMILARITY_PX} px)…") as status:
        cka = cka_matrix(ref.load(), layers, PHOTOS, store=store, done=progress_bar(status, "images read"))
        status.update(label=f"Measured CKA between {len(layers)} layers", state="complete")
    return cka


def figure(cka: list[list[float]], layers: list[str]) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=cka, x=layers, y=layers, zmin=0, zmax=1, colorscale="Viridis",
                               text=[[f"{v:.2f}" for v in row] for row in cka], texttemplate="%{text}",
                               hovertemplate="%{y} vs %{x}: CKA %{z:.3f}<extra></extra>"))
    fig.update_layout(height=120 + 44 * len(layers), margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(autorange="reversed"), xaxis=dict(side="top"))
    return fig


def compare_query(a: str, b: str) -> dict:
    """The link to Compare with layers a and b: this page's other parameters (model, settings) kept."""
    keep = {k: st.query_params.get_all(k) for k in st.query_params if k not in (LAYERS_KEY, "layers")}
    return {**keep, "layers": sorted({a, b}, key=[a, b].index)}


def selected_pair(event, layers: list[str]) -> tuple[str, str] | None:
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else []
    for point in points:
        a, b = point.get("y"), point.get("x")
        if a in layers and b in layers:
            return a, b
    return None


def pick_layers(view: View) -> list[str]:
    """The layers to compare, kept in the URL as one comma-separated value (`cka=a,b,c`; none: the stages)."""
    options, default = list(view.ref.layers), default_layers(view.ref)
    if LAYERS_KEY not in st.session_state:
        linked = [n.strip() for n in (urlstate.single_value(LAYERS_KEY) or "").split(",") if n.strip()]
        valid = resolve_linked(view, linked)
        st.session_state[LAYERS_KEY] = list(dict.fromkeys(valid)) or default
    chosen = st.multiselect("Layers", options, key=LAYERS_KEY,
                            help="The layers to compare with each other (default: the model's stages).")
    if chosen == default:
        st.query_params.pop(LAYERS_KEY, None)
    else:
        st.query_params[LAYERS_KEY] = ",".join(chosen)
    return chosen


def draw(view: View) -> None:
    chosen = set(pick_layers(view))
    layers = [n for n in view.ref.layers if n in chosen]  # shallow to deep
    if len(layers) < 2:
        st.info("Pick at least two layers.")
        return
    try:
        cka = matrix(view.ref, layers, view.store)
    except FeatvizError as exc:
        st.error(urlstate.plain(str(exc)))
        return
    event = st.plotly_chart(figure(cka, layers), on_select="rerun", selection_mode="points", key=CHART_KEY,
                            width="stretch")
    pair = selected_pair(event, layers)
    if pair is None:
        st.caption("Select a cell to compare its two layers' pictures side by side.")
        return
    a, b = pair
    st.page_link(COMPARE, label=f"Compare {a} and {b} (CKA {cka[layers.index(a)][layers.index(b)]:.2f})",
                 icon=":material/compare:", query_params=compare_query(a, b))
