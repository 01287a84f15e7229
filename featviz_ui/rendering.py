"""Rendering for the pages: cached pictures at once, the rest with a progress bar and live previews.

Cache hits are read straight from the store by key (no model load, no forward pass); the model is
loaded only when something is missing. Finished batches are stored by the core as they complete, so a
render interrupted by a widget change keeps what it finished.
"""
from __future__ import annotations

from typing import Sequence

import streamlit as st

from featviz_core import ChannelResult, FeatvizError, RenderSettings, Store, render_channels
from featviz_core.objectives import Target

from .models import ModelRef

Slots = dict[str, "st.delta_generator.DeltaGenerator"]


def limit(targets: list[Target], cap: int) -> list[Target]:
    """Hosted mode: at most `cap` pictures per view, with a visible note."""
    if len(targets) > cap:
        st.info(f"This server draws at most {cap} pictures per view: showing the first {cap} of {len(targets)}.")
    return targets[:cap]


def cached_results(ref: ModelRef, targets: Sequence[Target], settings: RenderSettings, store: Store) -> dict[str, ChannelResult]:
    found = {}
    for target in targets:
        hit = store.get(ref.key(target, settings))
        if hit is not None:
            found[str(target)] = hit
    return found


def tile_slots(labels: Sequence[str], columns: int) -> Slots:
    """A grid of empty placeholders, one per label, filled as pictures arrive."""
    slots: Slots = {}
    for start in range(0, len(labels), columns):
        cells = st.columns(columns)
        for cell, label in zip(cells, labels[start:start + columns]):
            slots[label] = cell.empty()
    return slots


def _inspect(key: str, label: str) -> None:
    st.session_state[key] = label


def draw_tile(slot, result: ChannelResult, inspect_key: str | None = None) -> None:
    """A finished picture; with `inspect_key`, a button under it selects it into that widget."""
    caption = result.label + (" · dead" if result.dead else "")
    with slot.container():
        st.image(result.png, caption=caption, width="stretch", output_format="PNG")
        if inspect_key:
            st.button("Inspect", key=f"inspect.{result.label}", icon=":material/zoom_in:", type="tertiary",
                      on_click=_inspect, args=(inspect_key, result.label), help=f"Show {result.label} large, with its curve and self-check")


def render(ref: ModelRef, targets: Sequence[Target], settings: RenderSettings, store: Store,
           slots: Slots | None = None, status_area=None, inspect_key: str | None = None) -> dict[str, ChannelResult]:
    """Results by label ("layer:channel"), drawing each into `slots` as soon as it exists (see
    `draw_tile` for `inspect_key`)."""
    slots = slots or {}
    results = cached_results(ref, targets, settings, store)
    for label, result in results.items():
        if label in slots:
            draw_tile(slots[label], result, inspect_key)
    missing = [t for t in targets if str(t) not in results]
    if not missing:
        return results
    for label in map(str, missing):
        if label in slots:
            slots[label].caption(f"{label} · waiting")
    area = status_area if status_area is not None else st.empty()
    try:
        model = ref.load()
        with area.status(f"Rendering {len(missing)} picture{'s' * (len(missing) > 1)}…", expanded=False) as status:
            bar = st.progress(0.0)
            for event in render_channels(model, [(t.layer, t.channel) for t in missing], settings, store, previews=True):
                if event.total_steps:
                    bar.progress(min(1.0, event.done_steps / event.total_steps),
                                 text=f"step {event.done_steps:,} of {event.total_steps:,} (all pictures)")
                for label, picture in event.preview:
                    if label in slots:
                        slots[label].image(picture, caption=f"{label} · forming…", width="stretch", output_format="PNG")
                for result in event.finished:
                    results[result.label] = result
                    if result.label in slots:
                        draw_tile(slots[result.label], result, inspect_key)
            status.update(label=f"Rendered {len(missing)} picture{'s' * (len(missing) > 1)}", state="complete")
        area.empty()
    except FeatvizError as exc:
        area.error(str(exc))
    return results
