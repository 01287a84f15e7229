"""An inspected concept of the Concepts page (concepts.py), under its tiles: where it lives (its heatmap
over the photos where it peaks), its top channels (each opens on Compare, inspected there), and its
match in each other column (the core's one-to-one matching of two layers' concepts), or that it has
none there, with the concepts each other column leaves unmatched."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from featviz_core import FeatvizError

from . import concept_data, urlstate
from .rendering import Lane, tile_caption
from .sidebar import View

CONCEPT_KEY = "concept"  # the inspected concept ("layer:index", of the sidebar's model), in the URL
COMPARE = "pages/compare.py"
PAGE_KEYS = ("layers", "layers2", "model2", "k", CONCEPT_KEY)  # this page's own, not handed to Compare


@dataclass
class Column:
    """One layer's concepts: its model's view, the model's name in a view of two (else ""), what was learned."""

    view: View
    layer: str
    name: str
    doc: dict | None = None
    lane: Lane | None = None


def channel_query(layer: str, channel: int) -> dict:
    """The link to Compare with `layer`'s `channel` alone, inspected: the sidebar's parameters kept."""
    keep = {k: st.query_params.get_all(k) for k in st.query_params
            if k not in PAGE_KEYS and not k.startswith(("ch.", "ch2."))}
    return {**keep, "layers": [layer], f"ch.{layer}": str(channel), "tile": f"{layer}:{channel}"}


def draw_where(column: Column, concept: int, view: View) -> None:
    with st.spinner("Mapping the concept over its photos…"):
        heat = concept_data.heatmaps(column.view.ref, column.doc, concept, view.store)
    st.markdown("**Where it lives**: the photos where it peaks, lit where its code is high")
    for cell, entry in zip(st.columns(len(heat)), heat):
        cell.image(concept_data.data_url(entry["jpeg"]), caption=f"photo {entry['photo']}", width="stretch")


def draw_channels(column: Column, concept: int) -> None:
    st.markdown("**Top channels**: its direction's largest weights; each opens on Compare, inspected")
    for entry in column.doc["concepts"][concept]["channels"]:
        st.page_link(COMPARE, label=f"{column.layer}:{entry['channel']} · weight {entry['weight']:+.2f}",
                     icon=":material/zoom_in:", query_params=channel_query(column.layer, entry["channel"]))


def draw_match(column: Column, concept: int, other: Column, view: View) -> None:
    """`concept`'s partner among `other`'s concepts (with its score), or that it has none there."""
    title = tile_caption(other.name, other.layer)
    with st.spinner(f"Matching the concepts of {column.layer} and {title}…"):
        found = concept_data.matches(column.view.ref, column.doc, other.view.ref, other.doc, view.store)
    pair = concept_data.partner(found, concept)
    if pair is None:
        st.warning(urlstate.plain(f"Unmatched in {title}: none of its concepts pairs with this one at "
                                  f"r ≥ {found['threshold']:.2f}."), icon=":material/link_off:")
    else:
        partner, score = pair
        crop = other.doc["exemplars"][partner][0]["jpeg"] if other.doc["exemplars"][partner] else None
        if crop:
            st.image(concept_data.data_url(crop), width=96)
        st.markdown(urlstate.plain(f"{title}: concept {partner} (r = {score:.2f})"))
    if found["unmatched2"]:
        st.caption(urlstate.plain(f"Unmatched in {title}: concepts {', '.join(map(str, found['unmatched2']))} "
                                  f"(no partner in {column.layer} at r ≥ {found['threshold']:.2f})."))
    st.caption(f"Pearson r of the two concepts' codes over {found['samples']:,} photo positions.")


def draw_concept(column: Column, concept: int, columns: list[Column], view: View) -> None:
    entry = column.doc["concepts"][concept]
    st.markdown(f"**{tile_caption(column.name, column.layer)} · concept {concept}**: {entry['importance']:.0%} of what "
                f"the layer's concepts reconstruct, over {column.doc['photos']} photos")
    left, right = st.columns([3, 2])
    with left:
        draw_where(column, concept, view)
    with right:
        draw_channels(column, concept)
    others = [o for o in columns if o is not column and o.doc is not None]
    if others:
        st.markdown("**In the other columns**: the concept each pairs with this one, one to one")
        for cell, other in zip(st.columns(len(others)), others):
            with cell:
                draw_match(column, concept, other, view)


class ConceptInspect:
    """Under the tiles: the concept chosen with a tile's Inspect button (or this selector, kept in the
    link). Drawn while the concept pictures still render: it needs none of them."""

    def __init__(self, view: View, columns: list[Column]):
        self.view, self.columns = view, columns
        self.area = st.container()

    def draw(self) -> None:
        inspectable = [c for c in self.columns if c.doc is not None and c.view is self.view]
        labels = [f"{c.layer}:{i}" for c in inspectable for i in range(len(c.doc["concepts"]))]
        with self.area:
            st.divider()
            urlstate.check_choice(CONCEPT_KEY, labels, "concept")
            chosen = st.selectbox("Inspect a concept", labels, index=None, key=CONCEPT_KEY, bind="query-params",
                                  placeholder="Press Inspect under a concept's picture, or choose one here")
            if chosen is None:
                return
            layer, _, index = chosen.rpartition(":")
            column = next(c for c in inspectable if c.layer == layer)
            try:
                draw_concept(column, int(index), self.columns, self.view)
            except FeatvizError as exc:
                st.error(urlstate.plain(str(exc)))
