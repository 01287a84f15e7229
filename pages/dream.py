"""Dream: a photo dreamed by 2–4 layers side by side (Deep Dream), live as the dreams form."""
import streamlit as st

from featviz_core.inputs import square
from featviz_core.jobs import dream_kind
from featviz_core.spec import LOGITS, Target
from featviz_core.spec.dream import DreamSettings, spec_for
from featviz_ui import rendering, urlstate
from featviz_ui.charts import curves_figure
from featviz_ui.photo_picker import pick_photo
from featviz_ui.picker import layer_label, resolve_url_layers
from featviz_ui.sidebar import open_page
from featviz_ui.targets import default_layers


def dream_settings(view) -> DreamSettings:
    """Size and seed from the sidebar; steps and octaves are the dream's own (its steps are cheaper)."""
    default = DreamSettings()
    steps = min(default.steps, view.caps.steps)
    urlstate.clamp_number("dsteps", 1, view.caps.steps, "dream step count", steps)
    urlstate.clamp_number("octaves", 1, 8, "octave count", default.octaves)
    left, right = st.columns(2)
    steps = left.number_input("Dream steps", 1, view.caps.steps, steps, step=10, key="dsteps", bind="query-params",
                              help="Gradient steps over all octaves.")
    octaves = right.number_input("Octaves", 1, 8, default.octaves, key="octaves", bind="query-params",
                                 help="The dream starts on the photo shrunk by 1.4 per octave and grows with it.")
    return DreamSettings(size=view.settings.size, steps=int(steps), octaves=int(octaves), seed=view.settings.seed)


def main() -> None:
    view = open_page("Dream")
    if view is None:
        return
    st.caption("Deep Dream: gradient ascent on the photo itself, raising everything a layer already sees in it. "
               "Early layers paint textures over the photo; deep layers grow eyes and animal parts.")
    photo = pick_photo()
    options = [n for n in view.ref.layers if n != LOGITS]
    resolve_url_layers(view, "layers")  # aliases in a link become names; unknown ones are said
    layers = st.multiselect("Layers", options, default=default_layers(options), key="layers", bind="query-params",
                            max_selections=4, help="Two to four layers, shallow to deep, each dreaming on the photo.")
    layers = sorted(layers, key=options.index)
    settings = dream_settings(view)
    st.caption("Image size and seed come from the sidebar; its method, steps, starting image and objective are "
               "for the other pages.")
    if photo is None or not layers:
        if not layers:
            st.info("Pick at least one layer.")
        return
    targets = [Target(layer, -1) for layer in layers]
    status = st.empty()
    columns = st.columns(1 + len(layers), border=True)
    columns[0].markdown(f"**{photo.label}**")
    columns[0].image(square(photo.pixels, settings.size), caption="the photo", width="stretch")  # as dreams frame it
    slots = {}
    for column, target in zip(columns[1:], targets):
        column.markdown(f"**{layer_label(view, target.layer)}**")
        slots[str(target)] = column.empty()
    results = rendering.render(view.ref, targets, view.settings, view.store, slots, status,
                               key=lambda t: spec_for(view.ref, photo.digest, t, settings).key(),
                               kind=lambda model: dream_kind(model, photo.pixels, photo.digest, settings, view.store))
    done = [results[str(t)] for t in targets if str(t) in results]
    if len(done) == len(targets):
        show_iterations(done, photo, columns[1:], slots)


def show_iterations(done, photo, columns, slots) -> None:
    """Every dream at the chosen iteration, its download, and the curves of all of them."""
    steps = [s for s, _ in done[0].snapshots]
    step = st.select_slider("Iteration", steps, value=steps[-1], key="step", bind="query-params")
    for column, result in zip(columns, done):
        slots[result.label].image(dict(result.snapshots)[step], caption=f"{result.label} at iteration {step}",
                                  width="stretch")
        column.download_button("⬇ PNG", result.png, f"dream_{photo.name[:8]}_{result.layer}.png", "image/png",
                               key=f"download.{result.label}", on_click="ignore")
    st.plotly_chart(curves_figure(done, y_title="layer objective (mean square)", marker_step=step, height=360),
                    key="dream_curves", width="stretch")


main()
