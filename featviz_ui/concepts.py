"""The Concepts page's drawing: 1 to 4 layers (of the sidebar's model, and of a second one) side by side,
each as the concepts dictionary learning finds in its activations on natural photos (the core's
learn_concepts): a tile per concept with its picture (the render loop climbing its direction, queued
with the render service like every picture), the photo crops where it peaks and its importance; the
R² of each layer's concepts against k; and an inspected concept (concept_inspect.py).

Everything is in the link: the layers (`layers`, `model2`, `layers2`, as on Compare), k (`k`) and the
inspected concept (`concept`). What learning finds is kept in the store (concept_data.py), so a link
opened again is drawn without the model.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import streamlit as st

from featviz_core import FeatvizError, RenderSettings, spec_for
from featviz_core.spec import Target
from featviz_core.spec.direction import direction_key

from . import concept_data, rendering, urlstate
from .charts import layer_colours
from .concept_inspect import CONCEPT_KEY, Column, ConceptInspect
from .models import ModelRef
from .picker import layer_label, pick_layers
from .rendering import Lane, tile_caption
from .second_model import model_names, pick_second_layers, pick_second_model
from .sidebar import View
from .svg_chart import curves_svg
from .waiting import progress_bar

if TYPE_CHECKING:
    from featviz_core import LoadedModel
    from featviz_core.jobs import PictureKind

K_KEY = "k"
K_CHOICES = (4, 6, 8, 12, 16, 24, 32)
DEFAULT_K = 8
MAX_COLUMNS = 4


def pick_k() -> int:
    urlstate.check_choice(K_KEY, K_CHOICES, "concept count", DEFAULT_K)
    return st.selectbox("Concepts per layer (k)", K_CHOICES, index=K_CHOICES.index(DEFAULT_K), key=K_KEY,
                        bind="query-params", help="How many concepts to learn in each layer.")


def learned(ref: ModelRef, layer: str, k: int, seed: int, store) -> dict:
    """The layer's concepts from the store, or learned under a status with a progress bar."""
    doc = concept_data.stored_summary(ref, layer, k, seed, store)
    if doc is not None:
        return doc
    with st.status(f"Learning {k} concepts of {layer} on natural photos…") as status:
        done = progress_bar(status, "photos read")
        doc = concept_data.summary(ref, layer, k, seed, store, done,
                                   found=lambda: status.update(label=f"Finding where {layer}'s concepts peak…"))
        status.update(label=f"Learned {k} concepts of {layer}", state="complete", expanded=False)
    return doc


def concept_kind(doc: dict, settings: RenderSettings, store) -> Callable[[LoadedModel], PictureKind]:
    """`render`'s kind of picture for a layer's concepts (torch is imported only when one must render)."""
    def kind(model: LoadedModel) -> PictureKind:
        from featviz_core.analysis import render_concepts
        from featviz_core.jobs import PictureKind

        def events(targets: list[Target], batch_size: int):
            return render_concepts(model, doc, settings, store, previews=True, batch_size=batch_size,
                                   concepts=[t.channel for t in targets])

        return PictureKind(("concepts", doc["digest"], doc["layer"], doc["k"], doc["seed"], settings),
                           settings.steps, settings.size, concept_key(model, doc, settings), events)

    return kind


def concept_key(card, doc: dict, settings: RenderSettings) -> Callable[[Target], str]:
    """A concept picture's cache key, from the model's card alone (no model loaded)."""
    return lambda t: direction_key(spec_for(card, t, settings), doc["concepts"][t.channel]["direction"])


def concept_label(doc: dict, c: int) -> str:
    return f"concept {c} · {doc['concepts'][c]['importance']:.0%} of the layer · n = {doc['photos']} photos"


def draw_tiles(column: Column, settings: RenderSettings, store, budget: int, inspect: bool) -> int:
    """The column's concept tiles (the picture's slot, the photo crops, the importance) within `budget`
    pictures; returns the budget left."""
    doc, slots = column.doc, {}
    for c in range(min(len(doc["concepts"]), budget)):
        st.caption(concept_label(doc, c))
        picture, *crops = st.columns(1 + concept_data.EXEMPLARS, gap="small")
        slots[f"{doc['layer']}:{c}"] = picture.empty()
        for cell, entry in zip(crops, doc["exemplars"][c]):
            cell.image(concept_data.data_url(entry["jpeg"]), width="stretch")
    targets = [Target(doc["layer"], c) for c in range(len(slots))]
    column.lane = Lane(column.view.ref, targets, slots, name=column.name,
                       inspect_key=CONCEPT_KEY if inspect else None, key=concept_key(column.view.ref, doc, settings),
                       kind=concept_kind(doc, settings, store))
    return budget - len(slots)


def fill_column(column: Column, view: View, k: int) -> None:
    st.markdown(f"**{tile_caption(column.name, layer_label(column.view, column.layer))}**")
    try:
        column.doc = learned(column.view.ref, column.layer, k, view.settings.seed, view.store)
    except FeatvizError as exc:
        st.error(urlstate.plain(str(exc)))
        return
    doc = column.doc
    st.caption(f"{doc['method'].upper()} · R² {doc['r2']:.2f} over {doc['positions']:,} positions of "
               f"{doc['photos']} photos")


def pick_columns(view: View) -> list[Column]:
    """The layers of the sidebar's model, then a second model's: at most MAX_COLUMNS."""
    layers = pick_layers(view, MAX_COLUMNS)
    second = pick_second_model(view)
    layers2 = pick_second_layers(view, second, layers) if second is not None else []
    names = model_names(view, second)
    columns = [Column(view, layer, names[0]) for layer in layers]
    columns += [Column(second, layer, names[1]) for layer in layers2]
    if len(columns) > MAX_COLUMNS:
        st.info(f"Showing the first {MAX_COLUMNS} of {len(columns)} layers: concepts of at most {MAX_COLUMNS} "
                "layers are shown side by side.")
    return columns[:MAX_COLUMNS]


def draw_r2(columns: list[Column], view: View) -> None:
    """R² of each layer's concepts against k: one line per layer."""
    learned_columns = [c for c in columns if c.doc is not None]
    if not learned_columns:
        return
    st.subheader("Variance explained against k")
    curves = []
    for column in learned_columns:
        curve = concept_data.stored_r2(column.view.ref, column.layer, view.settings.seed, view.store)
        if curve is None:
            with st.status(f"Learning {column.layer}'s concepts at k = "
                           f"{', '.join(map(str, concept_data.KS))}…") as status:
                curve = concept_data.r2_curve(column.view.ref, column.layer, view.settings.seed, view.store,
                                              progress_bar(status, "photos read"))
                status.update(label=f"Measured R² against k of {column.layer}", state="complete", expanded=False)
        curves.append((tile_caption(column.name, column.layer), [curve[k] for k in concept_data.KS]))
    colours = layer_colours([name for name, _ in curves])
    st.image(curves_svg([(name, colours[name], ys) for name, ys in curves], "R² (variance explained)", height=320,
                        x_title="concepts learned (k)", x_labels=[str(k) for k in concept_data.KS]), width="stretch")
    st.caption(f"R²: the share of the layer's activations (about their mean) the k concepts reconstruct, over the "
               f"positions they were learned on; {learned_columns[0].doc['photos']} photos.")


def draw(view: View) -> None:
    columns = pick_columns(view)
    k = pick_k()
    if not columns:
        st.info("Pick at least one layer.")
        return
    status = st.empty()
    budget = view.caps.channels
    for cell, column in zip(st.columns(len(columns), border=True), columns):
        with cell:
            fill_column(column, view, k)
            if column.doc is not None:
                budget = draw_tiles(column, view.settings, view.store, budget, column.view is view)
    lanes = [c.lane for c in columns if c.lane is not None]
    if sum(len(c.doc["concepts"]) for c in columns if c.doc) > view.caps.channels:
        st.info(f"This server draws at most {view.caps.channels} pictures per view.")
    inspect = ConceptInspect(view, columns)
    if lanes:
        rendering.render_lanes(lanes, view.settings, view.store, status, before_waiting=lambda _: inspect.draw())
    draw_r2(columns, view)
