"""Reading a shared link before its widgets exist.

Widgets bound with bind="query-params" silently drop URL values they cannot show. A person opening a
link deserves to know why the view differs from what was shared, so each check here peeks at the raw
URL value first and returns a message (shown by the caller) or fixes the value through session state.
"""
from __future__ import annotations

import re

import streamlit as st

from featviz_core.errors import unknown_choice

NOTES = "_featviz_url_notes"
# The ASCII punctuation that can start markdown (CommonMark lets a backslash escape any of it): with
# these escaped, text from a link forms no link, image, autolink (http\://, www\.), e-mail link, HTML,
# heading, list, emphasis, code, maths or Streamlit directive (:red[...]).
_MARKDOWN = re.compile(r"""([\\`*_{}\[\]()<>#+\-.!|~$:&@])""")


def plain(text: str) -> str:
    """`text` for a Streamlit element that renders markdown (st.error, st.warning, ...), shown as
    typed: Streamlit has no plain-text alert, and a message may quote a hostile link."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))


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


def single_value(key: str, kind: str) -> str | None:
    """A parameter that is not a widget's (read on every run): the first of repeated values, said."""
    values = st.query_params.get_all(key)
    if len(values) > 1:
        note(f"The link gives the {kind} {len(values)} times: using the first, {values[0]!r}.")
    return values[0] if values else None


def check_choice(key: str, options, kind: str) -> None:
    for value in raw_values(key):
        if value not in [str(o) for o in options]:
            note(f"The link asks for {kind} {value!r}, which this server does not offer. "
                 + str(unknown_choice(kind, value, [str(o) for o in options])), "error")


def clamp_number(key: str, low: int, high: int, kind: str, why: str = "") -> None:
    """Out-of-range numbers become the nearest allowed value, with a visible note."""
    for value in raw_values(key)[:1]:
        try:
            number = int(value)
        except ValueError:
            note(f"The link's {kind} {value!r} is not a whole number; using the default.")
            continue
        clamped = min(max(number, low), high)
        if clamped != number:
            st.session_state[key] = clamped
            note(f"The link's {kind} {number} is outside {low}–{high}{why}: using {clamped}.")
