"""Compare layers (landing view): grids of 2–4 layers side by side; inspect a tile for its details."""
import streamlit as st

from featviz_ui import rendering
from featviz_ui.details import TILE_KEY, InspectSection
from featviz_ui.picker import layer_label, pick_channels, pick_layers
from featviz_ui.sidebar import open_page


def main() -> None:
    view = open_page("Compare layers")
    if view is None:
        return
    st.caption("What each channel responds to, found by gradient ascent on the input picture. "
               "Early layers draw textures and colours; deep layers draw parts of objects.")
    layers = pick_layers(view)
    if not layers:
        st.info("Pick at least one layer.")
        return
    status = st.empty()
    columns = st.columns(len(layers), border=True)
    per_layer = []
    for column, layer in zip(columns, layers):
        with column:
            st.markdown(f"**{layer_label(view, layer)}**")
            per_layer.append(view.ref.targets([(layer, c) for c in pick_channels(view, layer)]))
    budget = len(rendering.limit([t for group in per_layer for t in group], view.caps.channels))
    slots = {}
    for column, group in zip(columns, per_layer):
        with column:
            shown, budget = group[:budget], budget - len(group[:budget])
            slots.update(rendering.tile_slots([str(t) for t in shown], max(2, 8 // len(layers))))
    targets = [t for group in per_layer for t in group if str(t) in slots]
    inspect = InspectSection(view.ref, [str(t) for t in targets], view.store)
    results = rendering.render(view.ref, targets, view.settings, view.store, slots, status, inspect_key=TILE_KEY,
                               before_waiting=inspect.draw)
    inspect.draw(results)


main()
