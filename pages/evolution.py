"""Evolution: how one picture morphs over the iterations, with the curve marked at the chosen one."""
import streamlit as st

from featviz_core.export import evolution_gif
from featviz_ui import exemplars, rendering, urlstate
from featviz_ui.charts import curves_picture
from featviz_ui.picker import pick_layer
from featviz_ui.sidebar import open_page


def main() -> None:
    view = open_page("Evolution")
    if view is None:
        return
    left, right = st.columns([3, 1])
    with left:
        layer = pick_layer(view)
    count = view.ref.info(layer).channels
    urlstate.clamp_number("channel", 0, count - 1, "channel", 0, f" (layer {layer} has {count})")
    channel = right.number_input(f"Channel (0–{count - 1})", 0, count - 1, 0, key="channel", bind="query-params")
    target = view.ref.targets([(layer, channel)])[0]
    live, _ = st.columns([2, 3])  # while it renders: the picture as it forms
    slot = live.empty()
    results = rendering.render(view.ref, [target], view.settings, view.store, slots={str(target): slot},
                               snapshots=True)
    slot.empty()
    result = results.get(str(target))
    if result is None:
        return
    frames = dict(result.snapshots)
    steps = list(frames)
    urlstate.check_choice("step", steps, "iteration", steps[-1])
    step = st.select_slider("Iteration", steps, value=steps[-1], key="step", bind="query-params")
    picture, photos, chart = exemplars.detail_columns(view.ref, result)
    picture.image(frames[step], caption=f"{result.label} at iteration {step} of {steps[-1]}", width="stretch")
    exemplars.draw_exemplars(photos, view.ref, result, view.store)
    with chart:
        st.image(curves_picture([result], marker_step=step, height=360), width="stretch")
        st.download_button("⬇ Animated GIF", lambda: evolution_gif(result), f"{view.ref.name}_{layer}_{channel}.gif",
                           "image/gif", on_click="ignore")  # built when pressed, not on every view
    with st.expander("All snapshots"):
        st.image([png for _, png in result.snapshots], caption=[f"step {s}" for s in steps], width=120)


main()
