"""The status area of a view waiting for its pictures: its place in the render queue, then a progress bar;
and the progress bar of a measurement (CKA, concepts) in a Streamlit status."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from featviz_core.serving import Snapshot


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


def progress_bar(status, unit: str) -> Callable[[int, int], None]:
    """A `done(n, more)` callback (the core's progress) that moves a bar in `status`."""
    bar, seen = status.progress(0.0), {"done": 0, "total": 0}

    def done(n: int, more: int) -> None:
        seen["done"] += n
        seen["total"] += more
        bar.progress(min(1.0, seen["done"] / max(1, seen["total"])), text=f"{seen['done']} of {seen['total']} {unit}")

    return done
