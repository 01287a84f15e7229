"""Rendering for the pages: cached pictures at once, the rest with a progress bar and live previews.

Cache hits are read straight from the store by key (no model load, no forward pass); the model is
loaded only when something is missing. The rest renders in a background job (jobs.py) that a widget
change does not interrupt: the rerun attaches to it and goes on drawing.
"""
from __future__ import annotations

import time
import uuid
from typing import Callable, Iterator, Sequence

import streamlit as st

from featviz_core import ChannelResult, FeatvizError, LoadedModel, Progress, RenderSettings, Store
from featviz_core.objectives import Target

from . import jobs
from .models import ModelRef

Slots = dict[str, "st.delta_generator.DeltaGenerator"]
POLL_S = 0.15
_WATCHER = "_render_watcher"


def _watcher_id() -> str:
    """This browser session, as a watcher of render jobs."""
    if _WATCHER not in st.session_state:
        st.session_state[_WATCHER] = uuid.uuid4().hex
    return st.session_state[_WATCHER]


def limit(targets: list[Target], cap: int) -> list[Target]:
    """Hosted mode: at most `cap` pictures per view, with a visible note."""
    if len(targets) > cap:
        st.info(f"This server draws at most {cap} pictures per view: showing the first {cap} of {len(targets)}.")
    return targets[:cap]


def cached_results(ref: ModelRef, targets: Sequence[Target], settings: RenderSettings, store: Store,
                   key: Callable[[Target], str] | None = None) -> dict[str, ChannelResult]:
    found = {}
    for target in targets:
        hit = store.get(key(target) if key else ref.key(target, settings))
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
           slots: Slots | None = None, status_area=None, inspect_key: str | None = None,
           before_waiting: Callable[[dict[str, ChannelResult]], None] | None = None,
           key: Callable[[Target], str] | None = None,
           events: Callable[[LoadedModel, list[Target]], Iterator[Progress]] | None = None) -> dict[str, ChannelResult]:
    """Results by label ("layer:channel"), drawing each into `slots` as soon as it exists (see
    `draw_tile` for `inspect_key`). `key` and `events` replace a render's cache key and
    render_channels for other pictures made the same way (the Dream page's dreams).

    `before_waiting` is called once with the results at hand (all of them when nothing is missing)
    before the wait for the rest: what it draws below the grid, such as the inspected tile's details,
    is there while the other pictures render."""
    slots = slots or {}
    results = cached_results(ref, targets, settings, store, key)
    for label, result in results.items():
        if label in slots:
            draw_tile(slots[label], result, inspect_key)
    if before_waiting is not None:
        before_waiting(dict(results))
    missing = [t for t in targets if str(t) not in results]
    watcher = _watcher_id()
    if not missing:
        jobs.release_all(watcher)  # the view changed to one that is all cached
        return results
    for label in map(str, missing):
        if label in slots:
            slots[label].caption(f"{label} · waiting")
    area = status_area if status_area is not None else st.empty()
    keys = {(key(t) if key else ref.key(t, settings)): str(t) for t in missing}

    def make_job() -> jobs.RenderJob:
        model = ref.load()
        source = (lambda: events(model, missing)) if events else None
        return jobs.RenderJob(model, missing, settings, store, frozenset(keys), source)
    try:
        job = jobs.job_for(watcher, frozenset(keys), make_job)
        wanted = set(keys.values())
        with area.status(f"Rendering {len(missing)} picture{'s' * (len(missing) > 1)}…", expanded=False) as status:
            bar = st.progress(0.0)
            drawn: dict[str, int] = {}  # label: the preview update drawn last
            while True:
                state = job.poll(watcher)
                # Called on every poll, changed or not: a widget change interrupts the script only at a
                # Streamlit call, and the job goes on for the next run to attach to.
                bar.progress(min(1.0, state.done_steps / max(1, state.total_steps)),
                             text=f"step {state.done_steps:,} of {state.total_steps:,} (all pictures)")
                for label, (update, picture) in state.previews.items():
                    if label in slots and label not in results and drawn.get(label) != update:
                        drawn[label] = update
                        slots[label].image(picture, caption=f"{label} · forming…", width="stretch", output_format="PNG")
                for label, result in state.results.items():
                    if label in wanted and label not in results:
                        results[label] = result
                        if label in slots:
                            draw_tile(slots[label], result, inspect_key)
                # A job attached to may render more than this view wants (the view narrowed mid-render).
                if state.finished or wanted <= results.keys():
                    break
                time.sleep(POLL_S)
            job.release(watcher)
            if state.error and not wanted <= results.keys():
                raise FeatvizError(state.error)
            status.update(label=f"Rendered {len(missing)} picture{'s' * (len(missing) > 1)}", state="complete")
        area.empty()
    except FeatvizError as exc:
        area.error(str(exc))
    return results
