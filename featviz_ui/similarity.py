"""The Layer similarity page's drawing: debiased linear CKA between the chosen layers of the sidebar's
model, as a heatmap (each cell's 95% interval on hover) whose cells open Compare with their two layers.

The matrix is the core's `cka_doc` (a batch job through the driver, kept in the store) over the natural
photos at SIMILARITY_PX with six crops each, or over a folder of photos the server's owner lists
(`streamlit run app.py -- --photos DIR`, repeatable; a link names one by its folder's name only, never a
path). A matrix in the store is read by key without the model, and without importing torch.
"""
from __future__ import annotations

import os

import plotly.graph_objects as go
import streamlit as st

from featviz_core import FeatvizError, Store
from featviz_core.analysis import PhotoSet, similarity_key
from featviz_core.spec import stage_layers
from featviz_core.store import lookup_json

from . import urlstate
from .config import photo_dirs
from .models import ModelRef
from .picker import resolve_linked
from .sidebar import View
from .waiting import progress_bar

SIMILARITY_PX = 128
NATURAL = "natural photos"  # the photo choice without a folder
PHOTOS = PhotoSet(size=SIMILARITY_PX)  # 14 photos, each as its centred square and 6 crops: 98 images
# Fewer photos than this and the matrix moves when photos are added (Lite0's stage layers, 128 px: the first
# 8 natural photos differ from all 14 by up to 0.14 in a cell, the first 10 by 0.10, the first 12 by 0.04).
STABLE_PHOTOS = 12
PHOTOS_KEY = "photos"  # the chosen photo folder, by name, in the URL
LAYERS_KEY = "cka"  # the page's own layers, in the URL (one comma-separated value)
CHART_KEY = "cka_map"
COMPARE = "pages/compare.py"
DOC = {"cka": [[float]], "cka_ci": [[[float]]], "n": int, "photos": int}


def photo_folders() -> dict[str, str]:
    """The owner's photo folders by the name visitors see (the folder's own name; repeats numbered)."""
    named: dict[str, str] = {}
    for path in photo_dirs():
        base = os.path.basename(os.path.normpath(path)) or "photos"
        name, k = base, 2
        while name in named or name == NATURAL:
            name, k = f"{base} ({k})", k + 1
        named[name] = path
    return named


def pick_photos() -> PhotoSet:
    """The photos to measure on: the natural ones, or a listed folder (kept in the URL by its name).
    Raises FeatvizError for a folder that cannot be used, naming it by its name only."""
    folders = photo_folders()
    if not folders:
        return PHOTOS
    options = [NATURAL, *folders]
    urlstate.check_choice(PHOTOS_KEY, options, "photo folder", NATURAL)
    chosen = st.selectbox("Photos", options, key=PHOTOS_KEY, bind="query-params",
                          help="What the layers are compared over: scikit-image's natural photos (each with six "
                               "crops), or a folder of photos this server offers (each photo once).")
    if chosen == NATURAL:
        return PHOTOS
    return PhotoSet.of_folder(folders[chosen], size=SIMILARITY_PX, label=chosen)


def default_layers(ref: ModelRef) -> list[str]:
    return stage_layers(list(ref.layers)) or [n for n in ref.layers][:8]


def _stored(ref: ModelRef, layers: list[str], photos: PhotoSet, store: Store) -> dict | None:
    return lookup_json(store, similarity_key(ref, layers, ref, layers, photos), DOC,  # by its card
                       valid=lambda d: len(d["cka"]) == len(layers))


def matrix(ref: ModelRef, layers: list[str], photos: PhotoSet, store: Store) -> dict:
    """cka_doc between `layers`, from the store or measured with a progress bar. Raises FeatvizError."""
    cached = _stored(ref, layers, photos, store)
    if cached is not None:
        return cached
    from featviz_core.analysis import cka_doc  # the measuring machinery (torch): only when nothing is stored

    with st.status(f"Measuring CKA between {len(layers)} layers on {photos.count()} images…") as status:
        doc = cka_doc(ref.load(), layers, photos, store=store, done=progress_bar(status, "images read"))
        status.update(label=f"Measured CKA between {len(layers)} layers", state="complete")
    return doc


def figure(doc: dict, layers: list[str]) -> go.Figure:
    cka = doc["cka"]
    fig = go.Figure(go.Heatmap(z=cka, x=layers, y=layers, zmin=0, zmax=1, colorscale="Viridis",
                               text=[[f"{v:.2f}" for v in row] for row in cka], texttemplate="%{text}",
                               customdata=doc["cka_ci"],
                               hovertemplate="%{y} vs %{x}: CKA %{z:.3f}, 95% interval "
                                             "%{customdata[0]:.2f} to %{customdata[1]:.2f}<extra></extra>"))
    fig.update_layout(height=120 + 44 * len(layers), margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(autorange="reversed"), xaxis=dict(side="top"))
    return fig


def method_note(doc: dict) -> str:
    """What the numbers are: n, the estimator, the interval; and whether the photos are too few."""
    note = (f"Debiased linear CKA over {doc['n']} images of {doc['photos']} photos; hover a cell for its 95% "
            "interval (half-samples of the photos).")
    if doc["photos"] < STABLE_PHOTOS:
        note += f" Only {doc['photos']} photos: too few for a stable number (use {STABLE_PHOTOS} or more)."
    return note


def compare_query(a: str, b: str) -> dict:
    """The link to Compare with layers a and b: this page's other parameters (model, settings) kept."""
    keep = {k: st.query_params.get_all(k) for k in st.query_params if k not in (LAYERS_KEY, PHOTOS_KEY, "layers")}
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
    options, default = view.ref.choices(), default_layers(view.ref)
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
    layers = sorted(chosen, key=view.ref.depth)  # shallow to deep
    if len(layers) < 2:
        st.info("Pick at least two layers.")
        return
    try:
        doc = matrix(view.ref, layers, pick_photos(), view.store)
    except FeatvizError as exc:
        st.error(urlstate.plain(str(exc)))
        return
    cka = doc["cka"]
    st.caption(method_note(doc))
    event = st.plotly_chart(figure(doc, layers), on_select="rerun", selection_mode="points", key=CHART_KEY,
                            width="stretch")
    pair = selected_pair(event, layers)
    if pair is None:
        st.caption("Select a cell to compare its two layers' pictures side by side.")
        return
    a, b = pair
    st.page_link(COMPARE, label=f"Compare {a} and {b} (CKA {cka[layers.index(a)][layers.index(b)]:.2f})",
                 icon=":material/compare:", query_params=compare_query(a, b))
