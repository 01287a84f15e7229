"""The Share control: the full link of the current view (root address + page + every bound parameter)."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from .views import LANDING

VIEW_PARAM = "view"  # which page a root link opens (see featviz_ui/views.py)


def share_link(page_url: str | None, view: str, params: list[tuple[str, str]]) -> str:
    """Links go to the server's root with `view=`: a deep path would meet Streamlit's legacy-pages
    "Page not found" dialog on a freshly restarted server."""
    params = [(k, v) for k, v in params if k != VIEW_PARAM]
    if view != LANDING:
        params = [(VIEW_PARAM, view)] + params
    query = urlencode(params)
    base = ""
    if page_url:
        parts = urlsplit(page_url)
        base = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    return f"{base}?{query}" if query else (base or "?")


def current_params() -> list[tuple[str, str]]:
    return [(key, value) for key in st.query_params for value in st.query_params.get_all(key)]


def draw_share(view: str) -> None:
    """Drawn last (after the page bound its widgets) so the link holds the page's own state too."""
    link = share_link(st.context.url, view, current_params())
    with st.sidebar.expander("Share this view", icon=":material/share:", expanded=False):
        st.code(link, language=None, wrap_lines=True)
        if st.context.url is None:
            st.caption("Append this query to the server's address to share it.")
        else:
            st.caption("Anyone opening this link sees the same view; pictures already rendered come from the cache.")
