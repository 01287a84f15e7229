"""A process-wide setting that users on several threads share: the first one in turns it on, the last
one out turns it back (a save and restore per user, left out of order, would leave it on for good).
Used for the attention kernel that circuits need (tokens.math_attention) and for cuDNN's kernel timing
during CUDA renders (optvis.render.cudnn_benchmark)."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator


class SharedSwitch:
    """`turn_on()` sets the setting and returns the function that sets it back."""

    def __init__(self, turn_on: Callable[[], Callable[[], None]]):
        self._turn_on = turn_on
        self._lock = threading.Lock()
        self._users = 0
        self._turn_back: Callable[[], None] | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._turn_back = self._turn_on()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._turn_back()
