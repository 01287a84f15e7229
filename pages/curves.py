"""Activation curves: activation (or z-score against natural photos) per iteration, one trace per channel."""
import streamlit as st

from featviz_ui import rendering, urlstate
from featviz_ui.charts import curves_figure
from featviz_ui.details import z_curves
from featviz_ui.picker import pick_channels, pick_layers
from featviz_ui.sidebar import open_page

Y_AXES = ("activation", "z-score")


def main() -> None:
    view = open_page("Activation curves")
    if view is None:
        return
    layers = pick_layers(view)
    inputs = st.columns(max(1, len(layers)))
    targets = []
    for column, layer in zip(inputs, layers):
        with column:
            targets += view.ref.targets([(layer, c) for c in pick_channels(view, layer, f"Channels of {layer}")])
    targets = rendering.limit(targets, view.caps.channels)
    urlstate.check_choice("y", Y_AXES, "y-axis scale", Y_AXES[0])
    y_axis = st.segmented_control("Y axis", Y_AXES, default=Y_AXES[0], key="y", bind="query-params",
                                  help="z-score: activation in units of the channel's spread on natural photos, "
                                       "so early and deep layers share one axis.") or Y_AXES[0]
    status = st.empty()
    chart, pictures = st.columns([3, 1])
    with pictures:  # filled as the pictures form, reordered once the chart says what is selected
        caption = st.empty()
        slots = rendering.tile_slots([str(t) for t in targets], 2)
    results = rendering.render(view.ref, targets, view.settings, view.store, slots, status)
    shown = [results[str(t)] for t in targets if str(t) in results]
    if not shown:
        return
    values = z_curves(view.ref, shown, view.settings.size, view.store) if y_axis == "z-score" else None
    with chart:
        event = st.plotly_chart(curves_figure(shown, values, y_axis), key="curves", on_select="rerun",
                                selection_mode="points", width="stretch")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    picked = {shown[p["curve_number"]].label for p in points if p.get("curve_number", -1) < len(shown)}
    caption.caption("Final pictures" + (" (selected in the chart first)" if picked else ""))
    ordered = sorted(shown, key=lambda r: r.label not in picked)
    for i, slot in enumerate(slots.values()):
        if i < len(ordered):
            rendering.draw_tile(slot, ordered[i])
        else:
            slot.empty()  # a picture that failed to render


main()
