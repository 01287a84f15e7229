"""Dream: the whole photo dreamed at its own shape (Deep Dream), by whole layers, a channel or a class,
with accentuation and a guide photo; live as the dreams form. Every setting is on this page."""
import streamlit as st

from featviz_core import FeatvizError
from featviz_core.inputs import whole_photo
from featviz_core.spec import LOGITS, Target
from featviz_core.spec.dream import (
    DREAM_SIZE_RANGE,
    MAX_ACCENTUATE,
    OCTAVES_RANGE,
    DreamSettings,
    dream_shape,
    largest_size,
    spec_for,
)
from featviz_ui import rendering, urlstate
from featviz_ui.charts import curves_picture
from featviz_ui.photo_picker import pick_photo
from featviz_ui.picker import layer_label, resolve_url_layers
from featviz_ui.sidebar import MAX_SEED, open_page
from featviz_ui.targets import default_layers

KINDS = {"layer": "Whole layers", "channel": "One channel", "logit": "A class"}
PAGE_SIZE = 4096  # the largest dream size the page offers, whatever the host's megapixel limit allows


def dream_settings(view, photo, kind: str, guide) -> DreamSettings:
    """Size (the longer side, up to the host's megapixel limit for this photo), steps, octaves, seed and
    accentuation: the dream's own, here on the page."""
    default = DreamSettings()
    low = DREAM_SIZE_RANGE[0]
    top = max(low, min(largest_size(photo.pixels.shape), max(photo.pixels.shape[:2]), PAGE_SIZE))
    steps = min(default.steps, view.caps.steps)
    urlstate.clamp_number("size", low, top, "dream size", min(default.size, top))
    urlstate.clamp_number("dsteps", 1, view.caps.steps, "dream step count", steps)
    urlstate.clamp_number("octaves", *OCTAVES_RANGE, "octave count", default.octaves)
    urlstate.clamp_number("seed", 0, MAX_SEED, "seed", default.seed)
    urlstate.clamp_number("accent", 0.0, MAX_ACCENTUATE, "accentuation strength", default.accentuate,
                          rule=lambda strength: default.with_(accentuate=strength))
    cols = st.columns(5)
    size = cols[0].number_input("Size (longer side)", low, top, min(default.size, top), step=32, key="size",
                                bind="query-params", help=f"Up to {top} px for this photo: the dream keeps its shape.")
    steps = cols[1].number_input("Dream steps", 1, view.caps.steps, steps, step=10, key="dsteps", bind="query-params",
                                 help="Gradient steps over all octaves.")
    octaves = cols[2].number_input("Octaves", *OCTAVES_RANGE, default.octaves, key="octaves", bind="query-params",
                                   help="The dream starts on the photo shrunk by 1.4 per octave and grows with it.")
    seed = cols[3].number_input("Seed", 0, MAX_SEED, default.seed, key="seed", bind="query-params")
    accent = cols[4].number_input("Accentuation", 0.0, MAX_ACCENTUATE, default.accentuate, step=0.5, key="accent",
                                  bind="query-params", help="0: a plain dream. Above 0: stay near the photo; a larger "
                                                            "strength lets the target show more.")
    return DreamSettings(size=int(size), steps=int(steps), octaves=int(octaves), seed=int(seed), objective=kind,
                         accentuate=float(accent), guide=guide.digest if guide is not None else None)


def pick_targets(view, kind: str) -> list[Target]:
    """Whole layers (two to four), one channel of a layer, or one class logit."""
    options = [n for n in view.ref.choices() if n != LOGITS]  # listed first, then every other module
    listed = [n for n in view.ref.layers if n != LOGITS]
    if kind == "logit":
        classes = view.ref.layers[LOGITS].channels
        urlstate.clamp_number("cls", 0, classes - 1, "class", 0, f" ({view.ref.name} has {classes} classes)")
        cls = st.number_input("Class", 0, classes - 1, 0, key="cls", bind="query-params",
                              help="A class index of the model's logits (lite0: ImageNet).")
        return [Target(LOGITS, int(cls))]
    if kind == "channel":
        left, right = st.columns(2)
        default = default_layers(listed)[-1]
        linked_layer(view, options, default)
        layer = left.selectbox("Layer", options, index=options.index(default), key="dlayer", bind="query-params")
        channels = view.ref.info(layer).channels
        urlstate.clamp_number("ch", 0, channels - 1, "channel", 0, f" (layer {layer} has {channels})")
        channel = right.number_input("Channel", 0, channels - 1, 0, key="ch", bind="query-params",
                                     help="Type it, or pick one on the Channels page's gallery of the layer.")
        return [Target(layer, int(channel))]
    resolve_url_layers(view, "layers")  # aliases in a link become names; unknown ones are said
    layers = st.multiselect("Layers", options, default=default_layers(listed), key="layers", bind="query-params",
                            max_selections=4, help="Two to four layers, shallow to deep, each dreaming on the photo.")
    return [Target(layer, -1) for layer in sorted(layers, key=view.ref.depth)]


def linked_layer(view, options: list[str], default: str) -> None:
    """The link's layer of a channel dream: an alias becomes its layer's name; one the page does not
    offer (unknown, or the logits) is noted with the valid layers, and the default shown."""
    for value in urlstate.raw_values("dlayer")[-1:]:
        name = view.ref.aliases.get(value, value)
        if name != value and name in options:
            st.session_state["dlayer"] = name
        else:
            urlstate.check_choice("dlayer", options, "layer to dream with", default)


def main() -> None:
    view = open_page("Dream")
    if view is None:
        return
    st.caption("Deep Dream: gradient ascent on the whole photo, at its own shape, raising everything a layer "
               "already sees in it (or one channel, or a class). Early layers paint textures; deep layers grow "
               "eyes and animal parts. Large dreams are computed in tiles.")
    photo = pick_photo()
    urlstate.check_choice("dkind", list(KINDS), "dream target", "layer")
    kind = st.selectbox("Dream with", list(KINDS), index=0, key="dkind", bind="query-params",
                        help="layer: whole layers (Deep Dream); channel: one channel of a layer; logit: a class.")
    targets = pick_targets(view, kind)
    guide = pick_photo("guide", "Guide photo", optional=True) if kind == "layer" else None
    if photo is None or not targets:
        if not targets:
            st.info("Pick at least one layer.")
        return
    try:
        settings = dream_settings(view, photo, kind, guide)
    except FeatvizError as exc:
        st.error(urlstate.plain(str(exc)))
        return
    draw_dreams(view, photo, targets, settings, guide)


def draw_dreams(view, photo, targets, settings, guide) -> None:
    status = st.empty()
    columns = st.columns(1 + len(targets) + (guide is not None), border=True)
    columns[0].markdown(f"**{photo.label}**")
    shape = dream_shape(photo.pixels.shape, settings.size)
    columns[0].image(whole_photo(photo.pixels, shape), caption="the photo", width="stretch")
    if guide is not None:
        columns[-1].markdown(f"**guide: {guide.label}**")
        columns[-1].image(guide.pixels, caption="the guide", width="stretch")
    slots = {}
    for column, target in zip(columns[1:], targets):
        column.markdown(f"**{target_label(view, target)}**")
        slots[str(target)] = column.empty()
    results = rendering.render(view.ref, targets, view.settings, view.store, slots, status,
                               key=lambda t: spec_for(view.ref, photo.digest, t, settings).key(),
                               kind=dreams_of(view, photo, settings, guide), snapshots=True)
    done = [results[str(t)] for t in targets if str(t) in results]
    if len(done) == len(targets):
        show_iterations(done, photo, columns[1:], slots)


def dreams_of(view, photo, settings, guide):
    """`render`'s kind of picture: the dreams, whose machinery (torch) is imported only when one must run."""
    def kind(model):
        from featviz_core.jobs import dream_kind

        return dream_kind(model, photo.pixels, photo.digest, settings, view.store,
                          guide.pixels if guide is not None else None)

    return kind


def target_label(view, target: Target) -> str:
    if target.layer == LOGITS:
        return f"class {target.channel}"
    if target.channel >= 0:
        return f"{layer_label(view, target.layer)} · channel {target.channel}"
    return layer_label(view, target.layer)


def show_iterations(done, photo, columns, slots) -> None:
    """Every dream at the chosen iteration, its download, and the curves of all of them."""
    steps = [s for s, _ in done[0].snapshots]
    step = st.select_slider("Iteration", steps, value=steps[-1], key="step", bind="query-params")
    for column, result in zip(columns, done):
        slots[result.label].image(dict(result.snapshots)[step], caption=f"{result.label} at iteration {step}",
                                  width="stretch")
        column.download_button("⬇ PNG", result.png, f"dream_{photo.name[:8]}_{result.layer}.png", "image/png",
                               key=f"download.{result.label}", on_click="ignore")
    st.image(curves_picture(done, y_title="dream objective", marker_step=step, height=360), width="stretch")


main()
