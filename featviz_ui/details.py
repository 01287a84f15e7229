"""Per-picture facts that need the model (self-check score, natural-photo statistics), computed once and
kept in the store so a cached view never runs a forward pass twice."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from featviz_core import ChannelResult, Store

from . import circuits, exemplars, urlstate
from .charts import curves_picture
from .models import ModelRef

if TYPE_CHECKING:  # the self-check (torch) is imported when a tile is inspected, not by a cached grid
    from featviz_core.analysis.selfcheck import CheckScore, LayerStats


def check_score(ref: ModelRef, result: ChannelResult, store: Store) -> CheckScore:
    """The picture's self-check, kept in the store under the atlas's key (selfcheck.picture_scores);
    the model is loaded only when it is not there."""
    from featviz_core.analysis.selfcheck import picture_scores, stored_scores

    (score,) = stored_scores([result], store)
    if score is None:
        with st.spinner("Self-checking the picture against natural photos…"):
            (score,) = picture_scores(ref.load(), result.layer, [result], store)
    return score


@st.cache_data(show_spinner="Measuring natural-photo statistics…", max_entries=64)
def _layer_stats(name: str, digest: str, layer: str, size: int, _ref: ModelRef, _store: Store) -> LayerStats:
    # natural_stats keeps its own copy in the store; this only saves the disk read within a process.
    from featviz_core.analysis.selfcheck import natural_stats

    return natural_stats(_ref.load(), layer, size, _store)


def z_curves(ref: ModelRef, results: list[ChannelResult], size: int, store: Store) -> list[np.ndarray]:
    from featviz_core.analysis.selfcheck import curve_z

    return [curve_z(r.curve, _layer_stats(ref.name, ref.digest, r.layer, size, ref, store), r.channel) for r in results]


def draw_details(ref: ModelRef, result: ChannelResult, store: Store) -> None:
    """The picture large, its activation curve and its self-check score."""
    picture, photos, facts = exemplars.detail_columns(ref, result)
    picture.image(result.png, caption=result.label, width="stretch")
    exemplars.draw_exemplars(photos, ref, result, store)
    with facts:
        score = check_score(ref, result, store)
        a, b, c = st.columns(3)
        a.metric("Self-check z", f"{score.z:.1f}", help="Robust z-score of the channel's activation on this picture "
                 "(under random jitter/scale/rotation) against natural photos.")
        b.metric("Rank in layer", f"{score.rank} / {score.channels}",
                 help="1: no other channel of the layer responds more (in z).")
        c.metric("Final activation", f"{result.curve[-1]:.3f}")
        if result.dead:
            st.warning("This channel could not be excited: its activation never rose above zero.")
        st.image(curves_picture([result], height=260), width="stretch")


TILE_KEY = "tile"  # the inspected tile's widget and URL key; Inspect buttons (rendering.draw_tile) set it


class InspectSection:
    """Under a grid: the tile chosen with its Inspect button (or this selector, kept in the link), large.

    Placed where it is created (below the grid); `draw` may run before the grid has finished rendering
    (rendering.render's `before_waiting`), so a finished tile can be inspected while others still
    render, and again afterwards to add details that were not ready. The tile's circuit (Built from,
    Feeds into: circuits.py) is drawn on that later call, once the grid no longer waits for the render
    service: its pictures are queued there too."""

    def __init__(self, ref: ModelRef, labels: list[str], store: Store):
        self.ref, self.labels, self.store = ref, labels, store
        self._area = st.container()
        self._details = None  # the details' placeholder once the selector is drawn
        self._chosen: str | None = None
        self._drawn = False
        self._calls = 0
        self._walk = None  # the circuit's area, under the details

    def draw(self, results: dict[str, ChannelResult]) -> None:
        self._calls += 1
        self._draw_tile(results)
        if self._drawn and self._calls >= 2 and self._walk is None:
            self._walk = self._area.container()
            with self._walk:
                circuits.draw_circuit(self.ref, results[self._chosen], self.store)

    def _draw_tile(self, results: dict[str, ChannelResult]) -> None:
        if self._details is None:
            with self._area:
                st.divider()
                urlstate.check_choice(TILE_KEY, self.labels, "tile")
                self._chosen = st.selectbox(
                    "Inspect a tile", self.labels, index=None, key=TILE_KEY, bind="query-params",
                    placeholder="Press Inspect under a tile, or choose one here, to see it large with its curve and "
                                "self-check score")
                self._details = st.empty()
        if self._drawn or self._chosen is None:
            return
        if self._chosen in results:
            with self._details.container():
                draw_details(self.ref, results[self._chosen], self.store)
            self._drawn = True
        else:
            self._details.caption(f"{self._chosen} is still rendering: its details follow when it is done.")
