"""Rendering for the pages: cached pictures at once, the rest with a progress bar and live previews.

Cache hits are read straight from the store by key (no model load, no forward pass); the model is
loaded only when something is missing. The rest goes to the server's render service
(featviz_core/service.py), shared by every session: a widget change does not interrupt it (the rerun
asks again and goes on drawing), and the status shows the visitor's place in the queue and its wait.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import streamlit as st

from featviz_core import ChannelResult, FeatvizError, RenderSettings, Store
from featviz_core.spec import Target

from . import urlstate
from .config import caps, max_queued
from .models import ModelRef
from .tiles import GRID_RESULTS, tile_url
from .waiting import WaitDisplay, queue_text  # noqa: F401 (queue_text: the status's words)

if TYPE_CHECKING:  # the render service and the picture kinds are imported when something must render:
    # a view served from the cache imports no torch (tests/test_app_cold.py)
    from featviz_core import LoadedModel
    from featviz_core.jobs import PictureKind
    from featviz_core.serving import RenderService, Snapshot

Slots = dict[str, "st.delta_generator.DeltaGenerator"]
POLL_S = 0.5
_WATCHER = "_render_watcher"
_QUEUED = "_render_queued"  # this session has asked the render service for pictures


@st.cache_resource(show_spinner=False)
def render_service() -> RenderService:
    """One per server process: every session's renders share its queue and its worker threads."""
    from featviz_core.serving import RenderService

    return RenderService()


def queue_cap() -> int | None:
    """Hosted mode: pictures one visitor may have queued at once (FEATVIZ_MAX_QUEUED, by default the
    pictures per view)."""
    limits = caps()
    return max_queued(limits.channels) if limits.hosted else None


def _watcher_id() -> str:
    """This browser session, as a visitor of the render service."""
    if _WATCHER not in st.session_state:
        st.session_state[_WATCHER] = uuid.uuid4().hex
    return st.session_state[_WATCHER]


def limit(targets: list[Target], cap: int) -> list[Target]:
    """Hosted mode: at most `cap` pictures per view, with a visible note."""
    if len(targets) > cap:
        st.info(f"This server draws at most {cap} pictures per view: showing the first {cap} of {len(targets)}.")
    return targets[:cap]


def draw_cached(lane: Lane, settings: RenderSettings, store: Store) -> None:
    """What the store has of the lane's targets into its results, each drawn as soon as it is read
    (so the browser decodes the first pictures while the server reads the rest). Without the lane's
    `snapshots`, each result's final picture stands for its evolution frames (tiles.GRID_RESULTS)."""
    for target in lane.targets:
        name = lane.key(target) if lane.key else lane.ref.key(target, settings)
        hit = store.get(name) if lane.snapshots else GRID_RESULTS.get(store, name)
        if hit is not None:
            lane.results[str(target)] = hit
            if str(target) in lane.slots:
                draw_tile(lane.slots[str(target)], hit, lane.inspect_key, lane.name)


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


def tile_caption(name: str, label: str) -> str:
    """A tile's caption: its label, after its model's name in a view of two models."""
    return f"{name} · {label}" if name else label


def draw_tile(slot, result: ChannelResult, inspect_key: str | None = None, name: str = "") -> None:
    """A finished picture; with `inspect_key`, a button under it selects it into that widget."""
    caption = tile_caption(name, result.label) + (" · dead" if result.dead else "")
    with slot.container():
        st.image(tile_url(result.png), caption=caption, width="stretch")
        if inspect_key:
            st.button("Inspect", key=f"inspect.{tile_caption(name, result.label)}", icon=":material/zoom_in:",
                      type="tertiary", on_click=_inspect, args=(inspect_key, result.label),
                      help=f"Show {result.label} large, with its curve and self-check")


@dataclass
class Lane:
    """One model's part of a view: its targets, drawn into its slots (labels "layer:channel") as they come.
    `name` goes before each caption in a view of two models ("lite1 · blocks.5:3")."""

    ref: ModelRef
    targets: Sequence[Target]
    slots: Slots = field(default_factory=dict)
    name: str = ""
    inspect_key: str | None = None
    results: dict[str, ChannelResult] = field(default_factory=dict)  # by label, filled by `render`
    snapshots: bool = False  # whether cached results bring their evolution frames (the pages that show them)
    key: Callable[[Target], str] | None = None  # with `kind`: another kind of picture than channel renders
    kind: Callable[[LoadedModel], PictureKind] | None = None  # (see `render`), such as a layer's concepts


def render(ref: ModelRef, targets: Sequence[Target], settings: RenderSettings, store: Store,
           slots: Slots | None = None, status_area=None, inspect_key: str | None = None,
           before_waiting: Callable[[dict[str, ChannelResult]], None] | None = None,
           key: Callable[[Target], str] | None = None, kind: Callable[[LoadedModel], PictureKind] | None = None,
           snapshots: bool = False) -> dict[str, ChannelResult]:
    """Results by label ("layer:channel"), drawing each into `slots` as soon as it exists (see
    `draw_tile` for `inspect_key`). `key` (a cache key without the model loaded) and `kind` (with
    it) replace channel renders with another kind of picture (the Dream page's dreams). `snapshots`:
    whether cached results bring their evolution frames (Lane).

    `before_waiting` is called once with the results at hand (all of them when nothing is missing)
    before the wait for the rest: what it draws below the grid, such as the inspected tile's details,
    is there while the other pictures render."""
    lane = Lane(ref, targets, slots or {}, inspect_key=inspect_key, snapshots=snapshots, key=key, kind=kind)
    render_lanes([lane], settings, store, status_area, before_waiting)
    return lane.results


def render_lanes(lanes: Sequence[Lane], settings: RenderSettings, store: Store, status_area=None,
                 before_waiting: Callable[[dict[str, ChannelResult]], None] | None = None) -> None:
    """`render` for several lanes (a view of two models, or of each layer's concepts) in one wait, with the
    same settings; each lane's results fill its `results`. `before_waiting` gets the first lane's."""
    for lane in lanes:
        draw_cached(lane, settings, store)
    if before_waiting is not None:
        before_waiting(dict(lanes[0].results))
    area = status_area if status_area is not None else st.empty()
    try:
        _render_missing(list(lanes), settings, store, area)
    except FeatvizError as exc:
        area.error(urlstate.plain(str(exc)))


def _render_missing(lanes: list[Lane], settings: RenderSettings, store: Store, area) -> None:
    """Queue what the cache lacks with the render service and draw it as it comes (into each lane's results)."""
    wanted = [(lane, [t for t in lane.targets if str(t) not in lane.results]) for lane in lanes]
    wanted = [(lane, missing) for lane, missing in wanted if missing]
    if not wanted:
        if st.session_state.pop(_QUEUED, False):  # the view changed to one that is all cached
            render_service().release(_watcher_id())
        return
    from featviz_core.jobs import channel_items, channel_kind

    service, watcher = render_service(), _watcher_id()  # a bad FEATVIZ_RENDER_WORKERS says so here
    st.session_state[_QUEUED] = True
    for lane, missing in wanted:
        for label in map(str, missing):
            if label in lane.slots:
                lane.slots[label].caption(f"{tile_caption(lane.name, label)} · waiting")
    items, where = [], {}  # where: item key -> the (lane, label) it is drawn as (one model may be in two lanes)
    for lane, missing in wanted:
        model = lane.ref.load()
        pictures = lane.kind(model) if lane.kind else channel_kind(model, settings, store)
        for item in channel_items(model, missing, pictures):
            items.append(item)
            where.setdefault(item.key, []).append((lane, item.label))
    state = _wait_for(service, watcher, items, where, area)
    if state.errors:
        raise FeatvizError(next(iter(state.errors.values())))
    if state.refused:
        area.info(f"This server queues at most {queue_cap()} pictures per visitor: "
                  f"{state.refused} of this view's were left out.")
    else:
        area.empty()


def _wait_for(service: RenderService, watcher: str, items, where: dict[str, list], area) -> Snapshot:
    """Queue `items` for this session and draw previews and results into their lanes until all are done."""
    cap = queue_cap()
    service.want(watcher, items, cap)
    display = WaitDisplay(area, f"{len(where)} picture{'s' * (len(where) > 1)}")
    drawn: dict[str, int] = {}  # item key: the preview update drawn last
    while True:
        state = service.poll(watcher)
        if not state.total_steps:  # dropped meanwhile (this session was silent too long): ask again
            service.want(watcher, items, cap)
            continue
        display.show(state)
        for key, (update, picture) in state.previews.items():
            if drawn.get(key) != update:
                drawn[key] = update
                for lane, label in where.get(key, ()):
                    if label in lane.slots:
                        lane.slots[label].image(picture, caption=f"{tile_caption(lane.name, label)} · forming…",
                                                width="stretch", output_format="PNG")
        for key, result in state.results.items():
            for lane, label in where.get(key, ()):
                if label not in lane.results:
                    lane.results[label] = result
                    if label in lane.slots:
                        draw_tile(lane.slots[label], result, lane.inspect_key, lane.name)
        if state.finished:
            return state
        time.sleep(POLL_S)
        # A widget change interrupts a script only where it calls Streamlit, and a poll that changed
        # nothing sends nothing: reading the session state is such a call (it sends nothing).
        _watcher_id()
