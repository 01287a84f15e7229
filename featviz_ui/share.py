"""The Share control: the full link of the current view (page address + every bound parameter)."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import streamlit as st


def share_link(page_url: str | None, params: list[tuple[str, str]]) -> str:
    query = urlencode(params)
    base = page_url or ""
    if base and not urlsplit(base).path:  # st.context.url of the root page has no trailing slash
        base += "/"
    return f"{base}?{query}" if query else (base or "?")


def current_params() -> list[tuple[str, str]]:
    return [(key, value) for key in st.query_params for value in st.query_params.get_all(key)]


def draw_share() -> None:
    """Drawn last (after the page bound its widgets) so the link holds the page's own state too."""
    link = share_link(st.context.url, current_params())
    with st.sidebar.expander("Share this view", icon=":material/share:", expanded=False):
        st.code(link, language=None, wrap_lines=True)
        if st.context.url is None:
            st.caption("Append this query to the page's address to share it.")
        else:
            st.caption("Anyone opening this link sees the same view; pictures already rendered come from the cache.")
