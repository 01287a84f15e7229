"""Per-picture facts that need the model (self-check score, natural-photo statistics), computed once and
kept in the store so a cached view never runs a forward pass twice."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import streamlit as st

from featviz_core import ChannelResult, Store
from featviz_core.selfcheck import CheckScore, LayerStats, curve_z, natural_stats, score_pictures

from .charts import curves_figure
from .models import ModelRef


def check_score(ref: ModelRef, result: ChannelResult, store: Store) -> CheckScore:
    key = f"ui:score:{result.key}"
    cached = store.get_json(key)
    if cached is None:
        with st.spinner("Self-checking the picture against natural photos…"):
            score = score_pictures(ref.load(), [result.image[..., :3]], result.layer, [result.channel], store)[0]
        store.put_json(key, asdict(score))
        return score
    return CheckScore(**cached)


@st.cache_data(show_spinner="Measuring natural-photo statistics…", max_entries=64)
def _layer_stats(name: str, digest: str, layer: str, size: int, _ref: ModelRef, _store: Store) -> LayerStats:
    # natural_stats keeps its own copy in the store; this only saves the disk read within a process.
    return natural_stats(_ref.load(), layer, size, _store)


def z_curves(ref: ModelRef, results: list[ChannelResult], size: int, store: Store) -> list[np.ndarray]:
    return [curve_z(r.curve, _layer_stats(ref.name, ref.digest, r.layer, size, ref, store), r.channel) for r in results]


def draw_details(ref: ModelRef, result: ChannelResult, store: Store) -> None:
    """The picture large, its activation curve and its self-check score."""
    picture, facts = st.columns([2, 3])
    picture.image(result.png, caption=result.label, width="stretch")
    with facts:
        score = check_score(ref, result, store)
        a, b, c = st.columns(3)
        a.metric("Self-check z", f"{score.z:.1f}", help="Robust z-score of the channel's activation on this picture "
                 "(under random jitter/scale/rotation) against natural photos.")
        b.metric("Rank in layer", f"{score.rank} / {score.channels}", help="1: no other channel of the layer responds more (in z).")
        c.metric("Final activation", f"{result.curve[-1]:.3f}")
        if result.dead:
            st.warning("This channel could not be excited: its activation never rose above zero.")
        st.plotly_chart(curves_figure([result], height=260), key=f"detail_curve_{result.label}", width="stretch")


TILE_KEY = "tile"  # the inspected tile's widget and URL key; Inspect buttons (rendering.draw_tile) set it


def inspect_section(ref: ModelRef, results: dict[str, ChannelResult], labels: list[str], store: Store) -> None:
    """Under a grid: the tile chosen with its Inspect button (or this selector, kept in the link), large."""
    st.divider()
    chosen = st.selectbox("Inspect a tile", [label for label in labels if label in results], index=None, key=TILE_KEY,
                          bind="query-params",
                          placeholder="Press Inspect under a tile, or choose one here, to see it large with its curve and self-check score")
    if chosen in results:
        draw_details(ref, results[chosen], store)
