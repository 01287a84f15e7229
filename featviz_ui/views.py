"""The dashboard's pages, declared for st.navigation, and how every page keeps one address that works.

Each page lives at /<url_path> (`/compare`, `/curves?...`). The root is a hidden page that forwards
to the page a share link names with `?view=` (Compare without one), keeping the query: so a link to
the root, or the address bar's own address, opens the same view.

While a fresh server has not yet run app.py, the `pages/` folder puts Streamlit in its legacy mode:
a first visit to `/curves` runs `pages/curves.py` by itself, skipping app.py, and a path that names
no file there shows a "Page not found" dialog. So each page file is named as its url_path, and a
page that finds itself run without app.py hands over (`hand_over_to_app`): declaring the pages with
st.navigation switches the server out of legacy mode for good, and a rerun then runs app.py on the
same page with the same query string.
"""
from __future__ import annotations

import threading

import streamlit as st

from . import urlstate

VIEWS = {  # url_path: (file, title, icon); the file is named as its url_path (see above)
    "compare": ("pages/compare.py", "Compare layers", ":material/compare:"),
    "curves": ("pages/curves.py", "Activation curves", ":material/show_chart:"),
    "gallery": ("pages/gallery.py", "Layer gallery", ":material/photo_library:"),
    "evolution": ("pages/evolution.py", "Evolution", ":material/animation:"),
    "dream": ("pages/dream.py", "Dream", ":material/bedtime:"),
    "similarity": ("pages/similarity.py", "Layer similarity", ":material/grid_on:"),
    "concepts": ("pages/concepts.py", "Concepts", ":material/category:"),
}
LANDING = "compare"  # where the root goes without ?view=
VIEW_PARAM = "view"  # which page a link to the root opens
ROOT = "root"  # the forwarding page's key (its address is the root)

_this_run = threading.local()  # a script run stays on its session's script thread


def forward_to_linked_page() -> None:
    """The root: on to the page `?view=` names (LANDING without one), with the rest of the query.
    Repeated keys (layers=a&layers=b) go as lists: switch_page keeps only the last of repeated pairs."""
    urlstate.note_repeats()  # the rest of the link is handed on, but `view` stops here
    linked = st.query_params.get(VIEW_PARAM)
    if linked is not None and linked not in VIEWS:
        urlstate.note(f"The link asks for view {linked!r}, which is no page here; showing {VIEWS[LANDING][1]}. "
                      f"Valid views: {', '.join(VIEWS)}.", "error")
    st.switch_page(VIEWS[linked if linked in VIEWS else LANDING][0],
                   query_params={k: st.query_params.get_all(k) for k in st.query_params if k != VIEW_PARAM})


def declare_pages(position: str = "sidebar") -> tuple[str, st.Page]:
    """st.navigation over VIEWS plus the hidden root; returns the chosen (key, page)."""
    pages = {key: st.Page(path, title=title, icon=icon, url_path=key) for key, (path, title, icon) in VIEWS.items()}
    pages[ROOT] = st.Page(forward_to_linked_page, title="featviz", url_path=ROOT, default=True, visibility="hidden")
    page = st.navigation(list(pages.values()), position=position)
    return next(key for key, p in pages.items() if p.title == page.title), page


def run_page(page: st.Page) -> None:
    """Runs the chosen page, marked as run by app.py."""
    _this_run.inside_app = True
    try:
        page.run()
    finally:
        _this_run.inside_app = False


def hand_over_to_app() -> None:
    """Called first by every page: when legacy mode ran the page file by itself, rerun through app.py."""
    if getattr(_this_run, "inside_app", False):
        return
    declare_pages(position="hidden")
    st.rerun()
