"""Activation curves: activation (or z-score against natural photos) per iteration, one trace per channel.
With a second model (`model2`), its channels' traces join the first model's, named by model."""
import streamlit as st

from featviz_ui import rendering, urlstate
from featviz_ui.charts import curves_figure, curves_picture
from featviz_ui.details import z_curves
from featviz_ui.picker import pick_channels, pick_layers
from featviz_ui.rendering import Lane
from featviz_ui.second_model import CHANNELS2, model_names, pick_second_layers, pick_second_model
from featviz_ui.sidebar import open_page

Y_AXES = ("activation", "z-score")


def lane_of(view, layers: list[str], name: str, prefix: str) -> Lane:
    """One model's channel lists, a column per layer."""
    targets = []
    for column, layer in zip(st.columns(max(1, len(layers))), layers):
        with column:
            label = f"Channels of {name} {layer}" if name else f"Channels of {layer}"
            targets += view.ref.targets([(layer, c) for c in pick_channels(view, layer, label, prefix)])
    return Lane(view.ref, targets, name=name)


def pick_lanes(view) -> list[Lane]:
    """The first model's lane and, with a second model chosen, its lane; within the pictures per view."""
    layers = pick_layers(view)
    second = pick_second_model(view)
    names = model_names(view, second)
    lanes = [lane_of(view, layers, names[0], "ch")]
    if second is not None:
        lanes.append(lane_of(second, pick_second_layers(view, second, layers), names[1], CHANNELS2))
    budget = len(rendering.limit([t for lane in lanes for t in lane.targets], view.caps.channels))
    for lane in lanes:
        lane.targets, budget = lane.targets[:budget], budget - len(lane.targets[:budget])
    return lanes


def main() -> None:
    view = open_page("Activation curves")
    if view is None:
        return
    lanes = pick_lanes(view)
    urlstate.check_choice("y", Y_AXES, "y-axis scale", Y_AXES[0])
    y_axis = st.segmented_control("Y axis", Y_AXES, default=Y_AXES[0], key="y", bind="query-params",
                                  help="z-score: activation in units of the channel's spread on natural photos, "
                                       "so early and deep layers share one axis.") or Y_AXES[0]
    interactive = st.toggle("Interactive chart", key="interactive", bind="query-params",
                            help="Hover for values, zoom, and select curves to bring their pictures first. "
                                 "Off: a static chart, which shows at once.")
    status = st.empty()
    chart, pictures = st.columns([3, 1])
    with pictures:  # filled as the pictures form, reordered once the chart says what is selected
        caption = st.empty()
        for lane in lanes:
            lane.slots = rendering.tile_slots([str(t) for t in lane.targets], 2)
    rendering.render_lanes(lanes, view.settings, view.store, status)
    shown = [(lane, lane.results[str(t)]) for lane in lanes for t in lane.targets if str(t) in lane.results]
    if not shown:
        return
    values = _z_values(view, lanes, shown) if y_axis == "z-score" else None
    drawn, event = ([r for _, r in shown], values, y_axis), None
    with chart:
        if interactive:
            event = st.plotly_chart(curves_figure(*drawn, models=_models(lanes, shown)), key="curves",
                                    on_select="rerun", selection_mode="points", width="stretch")
        else:
            st.image(curves_picture(*drawn, models=_models(lanes, shown)), width="stretch")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    picked = {p["curve_number"] for p in points if 0 <= p.get("curve_number", -1) < len(shown)}
    caption.caption("Final pictures" + (" (selected in the chart first)" if picked else ""))
    ordered = [shown[i] for i in sorted(range(len(shown)), key=lambda i: i not in picked)]
    for i, slot in enumerate(slot for lane in lanes for slot in lane.slots.values()):
        if i < len(ordered):
            rendering.draw_tile(slot, ordered[i][1], name=ordered[i][0].name)
        else:
            slot.empty()  # a picture that failed to render


def _z_values(view, lanes: list[Lane], shown: list) -> list:
    """The shown curves as z-scores, each against its own model's natural-photo statistics."""
    return [v for lane in lanes
            for v in z_curves(lane.ref, [r for w, r in shown if w is lane], view.settings.size, view.store)]


def _models(lanes: list[Lane], shown: list) -> list[str] | None:
    """Each trace's model, in a view of two models."""
    return [lane.name for lane, _ in shown] if len(lanes) > 1 else None


main()

