"""Compare layers (landing view): grids of 2–4 layers side by side; inspect a tile for its details.
With a second model (`model2`), its layers stand beside the first model's, rendered with the same settings."""
import streamlit as st

from featviz_ui import rendering
from featviz_ui.details import TILE_KEY, InspectSection
from featviz_ui.picker import layer_label, pick_channels, pick_layers
from featviz_ui.rendering import Lane, tile_caption
from featviz_ui.second_model import CHANNELS2, model_names, pick_second_layers, pick_second_model
from featviz_ui.sidebar import open_page


def column_targets(view, columns, layers: list[str], name: str, prefix: str) -> list[list]:
    """Each layer's column: its header (with the model's name in a view of two models) and channel list."""
    groups = []
    for column, layer in zip(columns, layers):
        with column:
            st.markdown(f"**{tile_caption(name, layer_label(view, layer))}**")
            groups.append(view.ref.targets([(layer, c) for c in pick_channels(view, layer, prefix=prefix)]))
    return groups


def fill_lanes(lanes: list[Lane], groups: list[list[list]], columns, cap: int) -> None:
    """Each lane's tile grid, column by column, within the host's pictures per view (first model first)."""
    budget = len(rendering.limit([t for per_layer in groups for group in per_layer for t in group], cap))
    cells = iter(columns)
    for lane, per_layer in zip(lanes, groups):
        for group in per_layer:
            with next(cells):
                shown, budget = group[:budget], budget - len(group[:budget])
                lane.slots.update(rendering.tile_slots([str(t) for t in shown], max(2, 8 // len(columns))))
        lane.targets = [t for group in per_layer for t in group if str(t) in lane.slots]


def main() -> None:
    view = open_page("Compare layers")
    if view is None:
        return
    st.caption("What each channel responds to, found by gradient ascent on the input picture. "
               "Early layers draw textures and colours; deep layers draw parts of objects.")
    layers = pick_layers(view)
    second = pick_second_model(view)
    layers2 = pick_second_layers(view, second, layers) if second is not None else []
    if not layers:
        st.info("Pick at least one layer.")
        return
    status = st.empty()
    columns = st.columns(len(layers) + len(layers2), border=True)
    names = model_names(view, second)
    groups = [column_targets(view, columns[:len(layers)], layers, names[0], "ch")]
    lanes = [Lane(view.ref, [], name=names[0], inspect_key=TILE_KEY)]
    if layers2:
        groups.append(column_targets(second, columns[len(layers):], layers2, names[1], CHANNELS2))
        lanes.append(Lane(second.ref, [], name=names[1]))
    fill_lanes(lanes, groups, columns, view.caps.channels)
    inspect = InspectSection(view.ref, [str(t) for t in lanes[0].targets], view.store)
    rendering.render_lanes(lanes, view.settings, view.store, status, before_waiting=inspect.draw)
    inspect.draw(lanes[0].results)


main()
