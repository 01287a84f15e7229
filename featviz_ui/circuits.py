"""How an inspected channel connects: "Built from" (its strongest inputs in the layer before, with their
pictures, attributions and signs) and "Feeds into" (the next layer's channels it drives most), each
with a button that inspects that channel instead, so a visitor walks down (or up) the network.

The walk is in the URL (`?walk=layer:channel`, beside the inspected tile), so a shared link opens the
same step. Circuits are measured at CIRCUIT_PX on a trimmed photo set (a few seconds on a CPU) through
the core's `circuit` (a batch job through the driver, kept in the store); a view whose circuit is in
the store reads it by key without loading the model.
"""
from __future__ import annotations

import streamlit as st

from featviz_core import ChannelResult, FeatvizError, Store
from featviz_core.spec import LOGITS
from featviz_core.store import lookup_json

from . import rendering, urlstate
from .models import ModelRef
from .sidebar import current_view

WALK = "walk"  # URL key: the channel walked to from the inspected tile
CIRCUIT_PX = 128
PHOTO_CROPS = 1  # every natural photo and one crop of each: 28 images
TOP = 6  # inputs shown (strongest |attribution| first, either sign) and channels fed
_ORIGIN = "_featviz_walk_origin"  # the tile the walk started from (a new tile ends the walk)


def _photos():
    from featviz_core.analysis import PhotoSet  # the circuit machinery (torch): imported once a tile is inspected

    return PhotoSet(size=CIRCUIT_PX, crops=PHOTO_CROPS)


def _work(ref: ModelRef, layer: str, channel: int):
    from featviz_core.analysis import circuit_work

    return circuit_work(ref, layer, channel, photos=_photos())  # ModelRef has the names circuit_work reads


def _stored(ref: ModelRef, work, store: Store) -> dict | None:
    """The store's circuit by key, without the model: the key read from the model's card."""
    from featviz_core.analysis import circuit_key
    from featviz_core.analysis.circuits import CIRCUIT_SHAPE

    return lookup_json(store, circuit_key(ref, work), CIRCUIT_SHAPE)


@st.cache_data(show_spinner=False, max_entries=256)
def _measure(name: str, digest: str, layer: str, channel: int, _ref: ModelRef, _store: Store) -> dict:
    work = _work(_ref, layer, channel)
    doc = _stored(_ref, work, _store)
    if doc is not None:
        return doc
    from featviz_core.analysis import circuit

    return circuit(_ref.load(), layer, channel, photos=_photos(), store=_store)


def circuit_of(ref: ModelRef, layer: str, channel: int, store: Store) -> dict:
    """The channel's circuit with its top lists; a status shows while it is measured. Raises FeatvizError."""
    _work(ref, layer, channel)  # bad requests say so before anything runs
    if _stored(ref, _work(ref, layer, channel), store) is None:
        with st.status(f"Measuring what drives {layer}:{channel} on natural photos ({CIRCUIT_PX} px)…") as status:
            doc = _measure(ref.name, ref.digest, layer, channel, ref, store)
            status.update(label=f"Measured the circuit of {layer}:{channel}", state="complete")
    else:
        doc = _measure(ref.name, ref.digest, layer, channel, ref, store)
    from featviz_core.analysis import top_lists

    doc = dict(doc)
    doc["exciting"], doc["inhibiting"] = top_lists(doc["inputs"], TOP)
    return doc


def _walk_to(label: str | None) -> None:
    if label is None:
        st.query_params.pop(WALK, None)
    else:
        st.query_params[WALK] = label


def walked_channel(ref: ModelRef, tile: ChannelResult) -> tuple[str, int]:
    """The channel the walk is at: the URL's `walk` (checked; a bad one is said and dropped), else the tile."""
    if st.session_state.get(_ORIGIN, tile.label) != tile.label:
        _walk_to(None)  # another tile was inspected: its walk starts afresh
    st.session_state[_ORIGIN] = tile.label
    value = urlstate.single_value(WALK)
    if not value:
        return tile.layer, tile.channel
    try:
        layer, _, channel = value.rpartition(":")
        if not layer or not channel.isdigit():
            raise FeatvizError(f"The link's walk {value!r} is not layer:channel (such as {tile.label}).")
        (target,) = ref.targets([(layer, int(channel))])
        return target.layer, target.channel
    except FeatvizError as exc:
        st.error(urlstate.plain(str(exc)))
        _walk_to(None)
        return tile.layer, tile.channel


def _inspect_button(label: str, key: str) -> None:
    st.button(f"Inspect {label}", key=key, icon=":material/arrow_downward:", type="tertiary", on_click=_walk_to,
              args=(label,), help=f"Walk to {label}: show its picture and what it is built from")


def _draw_inputs(ref: ModelRef, doc: dict, store: Store) -> None:
    st.markdown(f"**Built from** · the channels of `{doc['from']}` that drive it most on natural photos "
                "(gradient × activation: + excites, − inhibits)")
    entries = doc["inputs"][:TOP]
    labels = [f"{doc['from']}:{e['channel']}" for e in entries]
    cells = st.columns(len(entries)) if entries else []
    slots = {label: cell.empty() for label, cell in zip(labels, cells)}
    for cell, label, entry in zip(cells, labels, entries):
        with cell:
            verb = "excites" if entry["attribution"] > 0 else "inhibits"
            st.caption(f"{entry['sign']} {abs(entry['attribution']):.3g} · {verb}")
            _inspect_button(label, f"walk.in.{label}")
    results = rendering.render(ref, ref.targets([(doc["from"], e["channel"]) for e in entries]),
                               current_view().settings, store, status_area=st.empty())
    for label, slot in slots.items():
        if label in results:
            slot.image(results[label].png, caption=label, width="stretch", output_format="PNG")


def _draw_feeds(doc: dict) -> None:
    if not doc.get("into") or not doc["feeds_into"]:
        return
    st.markdown(f"**Feeds into** · the channels of `{doc['into']}` it drives most")
    cells = st.columns(min(TOP, len(doc["feeds_into"])))
    for cell, entry in zip(cells, doc["feeds_into"][:TOP]):
        label = f"{doc['into']}:{entry['channel']}"
        with cell:
            st.caption(f"{label} · {entry['sign']} {abs(entry['attribution']):.3g}")
            if doc["into"] != LOGITS:
                _inspect_button(label, f"walk.out.{label}")


def draw_circuit(ref: ModelRef, tile: ChannelResult, store: Store) -> None:
    """Under the inspected tile: the walked channel (when not the tile) and its Built from / Feeds into."""
    layer, channel = walked_channel(ref, tile)
    label = f"{layer}:{channel}"
    if label != tile.label:
        left, right = st.columns([1, 3])
        right.markdown(f"Walked from **{tile.label}** to **{label}**.")
        right.button(f"Back to {tile.label}", key="walk.back", icon=":material/undo:", on_click=_walk_to,
                     args=(None,))
        shown = rendering.render(ref, ref.targets([(layer, channel)]), current_view().settings, store,
                                 status_area=right.empty())
        if label in shown:
            left.image(shown[label].png, caption=label, width="stretch", output_format="PNG")
    try:
        doc = circuit_of(ref, layer, channel, store)
    except FeatvizError as exc:
        st.info(urlstate.plain(str(exc)))
        return
    _draw_inputs(ref, doc, store)
    _draw_feeds(doc)
