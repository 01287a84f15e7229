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
from typing import Callable, Sequence

import streamlit as st

from featviz_core import ChannelResult, FeatvizError, LoadedModel, RenderSettings, Store
from featviz_core.backends import RenderService, Snapshot
from featviz_core.jobs import PictureKind, channel_items, channel_kind
from featviz_core.spec import Target

from . import urlstate
from .config import caps, max_queued
from .models import ModelRef

Slots = dict[str, "st.delta_generator.DeltaGenerator"]
POLL_S = 0.5
_WATCHER = "_render_watcher"


@st.cache_resource(show_spinner=False)
def render_service() -> RenderService:
    """One per server process: every session's renders share its queue and its worker threads."""
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


def tile_caption(name: str, label: str) -> str:
    """A tile's caption: its label, after its model's name in a view of two models."""
    return f"{name} · {label}" if name else label


def draw_tile(slot, result: ChannelResult, inspect_key: str | None = None, name: str = "") -> None:
    """A finished picture; with `inspect_key`, a button under it selects it into that widget."""
    caption = tile_caption(name, result.label) + (" · dead" if result.dead else "")
    with slot.container():
        st.image(result.png, caption=caption, width="stretch", output_format="PNG")
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


def queue_text(state: Snapshot) -> str:
    """The progress bar's text: steps done, the visitor's place in the queue, the estimated wait."""
    text = f"step {state.done_steps:,} of {state.total_steps:,} (all pictures)"
    if state.ahead:
        text += f" · {state.ahead} picture{'s' * (state.ahead > 1)} ahead of yours in the queue"
    if state.wait_s is not None:
        text += f" · about {max(1, round(state.wait_s)):,} s left"
    return text


class WaitDisplay:
    """The status area of a view waiting for its pictures: a still note with its place in the queue
    while none of them renders, then a Streamlit status with a progress bar.

    It sends only what changed, at most every LIVE_REDRAW_S while pictures form and every
    QUEUED_REDRAW_S in the queue (or when the place changes): each message costs the visitor's browser
    a redraw, and on a busy server most views spend most of their time queued (bench/load.py reports
    the browsers' CPU time)."""
    LIVE_REDRAW_S, QUEUED_REDRAW_S = 1.0, 5.0

    def __init__(self, area, count: str):
        self.area, self.count = area, count
        self.status = self.bar = None
        self.text, self.ahead, self.at = "", -1, float("-inf")

    def show(self, state: Snapshot) -> None:
        text, now, queued = queue_text(state), time.monotonic(), bool(state.ahead) and self.status is None
        if text == self.text or now - self.at < (self.QUEUED_REDRAW_S if queued else self.LIVE_REDRAW_S) \
                and state.ahead == self.ahead:
            return
        self.text, self.ahead, self.at = text, state.ahead, now
        if queued:
            self.area.info(f"{self.count.capitalize()} waiting for the render queue · {text}",
                           icon=":material/hourglass_top:")
            return
        if self.status is None:
            self.status = self.area.status(f"Rendering {self.count}…", expanded=False)
            self.bar = self.status.progress(0.0)
        self.bar.progress(min(1.0, state.done_steps / max(1, state.total_steps)), text=text)


def render(ref: ModelRef, targets: Sequence[Target], settings: RenderSettings, store: Store,
           slots: Slots | None = None, status_area=None, inspect_key: str | None = None,
           before_waiting: Callable[[dict[str, ChannelResult]], None] | None = None,
           key: Callable[[Target], str] | None = None,
           kind: Callable[[LoadedModel], PictureKind] | None = None) -> dict[str, ChannelResult]:
    """Results by label ("layer:channel"), drawing each into `slots` as soon as it exists (see
    `draw_tile` for `inspect_key`). `key` (a cache key without the model loaded) and `kind` (with
    it) replace channel renders with another kind of picture (the Dream page's dreams).

    `before_waiting` is called once with the results at hand (all of them when nothing is missing)
    before the wait for the rest: what it draws below the grid, such as the inspected tile's details,
    is there while the other pictures render."""
    lane = Lane(ref, targets, slots or {}, inspect_key=inspect_key)
    render_lanes([lane], settings, store, status_area, before_waiting, key, kind)
    return lane.results


def render_lanes(lanes: Sequence[Lane], settings: RenderSettings, store: Store, status_area=None,
                 before_waiting: Callable[[dict[str, ChannelResult]], None] | None = None,
                 key: Callable[[Target], str] | None = None, kind: Callable[[LoadedModel], PictureKind] | None = None,
                 ) -> None:
    """`render` for the lanes of several models (a view of two models) in one wait, with the same settings;
    each lane's results fill its `results`. `before_waiting` gets the first lane's, `key` is its alone."""
    for lane in lanes:
        lane.results.update(cached_results(lane.ref, lane.targets, settings, store, key if lane is lanes[0] else None))
        for label, result in lane.results.items():
            if label in lane.slots:
                draw_tile(lane.slots[label], result, lane.inspect_key, lane.name)
    if before_waiting is not None:
        before_waiting(dict(lanes[0].results))
    area = status_area if status_area is not None else st.empty()
    try:
        _render_missing(list(lanes), settings, store, kind, area)
    except FeatvizError as exc:
        area.error(urlstate.plain(str(exc)))


def _render_missing(lanes: list[Lane], settings: RenderSettings, store: Store, kind, area) -> None:
    """Queue what the cache lacks with the render service and draw it as it comes (into each lane's results)."""
    service, watcher = render_service(), _watcher_id()  # a bad FEATVIZ_RENDER_WORKERS says so here
    wanted = [(lane, [t for t in lane.targets if str(t) not in lane.results]) for lane in lanes]
    wanted = [(lane, missing) for lane, missing in wanted if missing]
    if not wanted:
        service.release(watcher)  # the view changed to one that is all cached
        return
    for lane, missing in wanted:
        for label in map(str, missing):
            if label in lane.slots:
                lane.slots[label].caption(f"{tile_caption(lane.name, label)} · waiting")
    items, where = [], {}  # where: item key -> the (lane, label) it is drawn as (one model may be in two lanes)
    for lane, missing in wanted:
        model = lane.ref.load()
        pictures = kind(model) if kind else channel_kind(model, settings, store)
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
