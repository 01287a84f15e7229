"""The Share control: the full link of the current view (the page's address + every bound parameter)."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from .views import VIEW_PARAM


def share_link(page_url: str | None, view: str, params: list[tuple[str, str]]) -> str:
    """The page's own address (`.../curves?...`, which works on a freshly restarted server too, see
    views.py), under whatever path the server is proxied at."""
    query = urlencode([(k, v) for k, v in params if k != VIEW_PARAM])
    scheme, netloc, path = urlsplit(page_url or "")[:3]
    root = path[: -len(view)] if path.endswith("/" + view) else path.rstrip("/") + "/"
    return urlunsplit((scheme, netloc, root + view, query, ""))


def current_params() -> list[tuple[str, str]]:
    return [(key, value) for key in st.query_params for value in st.query_params.get_all(key)]


def draw_share(view: str) -> None:
    """Drawn last (after the page bound its widgets) so the link holds the page's own state too. In a
    popover, not an expander: a code block makes the browser fetch Streamlit's 1.5 MB syntax
    highlighter, and a closed popover's body is not drawn, so only a visitor who opens it pays."""
    link = share_link(st.context.url, view, current_params())
    with st.sidebar.popover("Share this view", icon=":material/share:", width="stretch"):
        st.code(link, language=None, wrap_lines=True)
        if st.context.url is None:
            st.caption("Append this to the server's address to share it.")
        else:
            st.caption("Anyone opening this link sees the same view; pictures already rendered come from the cache.")
