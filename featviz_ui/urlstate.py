"""Reading a shared link before its widgets exist.

Widgets bound with bind="query-params" silently drop URL values they cannot show. A person opening a
link deserves to know why the view differs from what was shared, so each check here peeks at the raw
URL value first and returns a message (shown by the caller) or fixes the value through session state.
"""
from __future__ import annotations

import math
import re
from typing import Callable

import streamlit as st

from featviz_core import FeatvizError
from featviz_core.errors import unknown_choice

NOTES = "_featviz_url_notes"
MULTI_VALUED = frozenset({"layers", "layers2"})  # parameters a link may repeat (a multiselect's choices)
# The ASCII punctuation that can start markdown (CommonMark lets a backslash escape any of it): with
# these escaped, text from a link forms no link, image, HTML, heading, list, emphasis, code, maths or
# Streamlit directive (:red[...]). GFM's autolinks (http://…, www.…, a@b.c) are found in the text after
# escapes are read, so an invisible word joiner on both sides of every ':', '.' and '@' breaks them (checked in
# Chromium: tests/test_browser_uploads.py).
_MARKDOWN = re.compile(r"""([\\`*_{}\[\]()<>#+\-.!|~$:&@])""")
_AUTOLINK_BREAK = re.compile(r"(\\[:.@])")  # escaped by then
WORD_JOINER = "\u2060"


def plain(text: str) -> str:
    """`text` for a Streamlit element that renders markdown (st.error, st.warning, ...), shown as
    typed: Streamlit has no plain-text alert, and a message may quote a hostile link."""
    escaped = _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))
    return _AUTOLINK_BREAK.sub(WORD_JOINER + "\\1" + WORD_JOINER, escaped)


def raw_values(key: str) -> list[str]:
    """The URL's values for `key` on the first run that sees them (later runs own the value)."""
    if key in st.session_state:
        return []
    return st.query_params.get_all(key)


def note(message: str, level: str = "warning") -> None:
    """Remember a message about the link for this session (it outlives the rerun that found it)."""
    notes = st.session_state.setdefault(NOTES, [])
    if (level, message) not in notes:
        notes.append((level, message))


def draw_notes(area) -> None:
    """Shown in a container above the page, filled after the page ran (pages add notes too)."""
    for level, message in st.session_state.get(NOTES, []):
        (area.error if level == "error" else area.warning)(plain(message), icon=":material/link:")


def single_value(key: str) -> str | None:
    """A parameter that is no widget's (read on every run): the last of repeated values, as widgets take."""
    values = st.query_params.get_all(key)
    return values[-1] if values else None


def note_repeats(multi: frozenset[str] = MULTI_VALUED) -> None:
    """Every parameter given several times that takes one value: Streamlit (and single_value) use the
    last, and the note says so. Drawn from the first run that sees the key."""
    for key in st.query_params:
        values = raw_values(key)
        if key not in multi and len(values) > 1:
            note(f"The link gives {key} {len(values)} times ({', '.join(repr(v) for v in values)}): using the last, "
                 f"{values[-1]!r}.")


def check_choice(key: str, options, kind: str, default=None) -> None:
    """A value the widget does not offer (the widget then shows `default`), named with the valid ones."""
    for value in raw_values(key)[-1:]:
        if value not in [str(o) for o in options]:
            instead = f"; showing {default}" if default is not None else ""
            note(f"The link asks for {kind} {value!r}, which is not offered here{instead}. "
                 + str(unknown_choice(kind, value, [str(o) for o in options])), "error")


def clamp_number(key: str, low: float, high: float, kind: str, default: float, why: str = "",
                 rule: Callable[[float], object] | None = None) -> None:
    """A number in low..high, whole unless `low` is a float: one outside becomes the nearest allowed
    value, anything else (64.5 for a whole number, NaN, -3 where negatives make no sense) the default,
    each with a note saying what is used. `rule` is the core's own check of the setting
    (spec.check_whole): a number it refuses is noted in its words."""
    whole = not isinstance(low, float)
    for value in raw_values(key)[-1:]:
        number = _number(value, whole)
        if number is None:
            st.session_state[key] = default
            note(f"The link's {kind} {value!r} is not a {'whole ' if whole else ''}number: using the default, "
                 f"{_shown(default)}.")
            continue
        clamped = min(max(number, low), high)
        if clamped != number:
            st.session_state[key] = clamped
            refused = _refused(rule, number)
            note(f"The link's {kind}: {refused} Using {_shown(clamped)}{why}." if refused
                 else f"The link's {kind} {_shown(number)} is outside {_shown(low)}–{_shown(high)}{why}: "
                      f"using {_shown(clamped)}.")


def _number(value: str, whole: bool) -> float | None:
    """The link's text as a whole number (or any finite number), else None."""
    try:
        number = int(value) if whole else float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _shown(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


def _refused(rule: Callable[[float], object] | None, number: float) -> str:
    """The core's message for a number its rule refuses; '' when it passes (or there is no rule)."""
    try:
        if rule is not None:
            rule(number)
    except FeatvizError as exc:
        return str(exc)
    return ""
