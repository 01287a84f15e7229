"""featviz dashboard: `streamlit run app.py` (add `-- --model pkg.mod:factory` to offer your own model).

The pages are declared in featviz_ui/views.py. Every page has one address: Compare the root, the
others `/<url_path>` (`/curves?...`), which works also as the first visit to a freshly started
server. A share link names its page with `?view=` at the root and is switched to that address.
"""
import streamlit as st

from featviz_ui.share import VIEW_PARAM, draw_share
from featviz_ui.sidebar import draw_sidebar
from featviz_ui.urlstate import draw_notes
from featviz_ui.views import VIEWS, declare_pages, run_page

st.set_page_config(page_title="featviz", page_icon=":material/visibility:", layout="wide")

view, page = declare_pages()
linked = st.query_params.get(VIEW_PARAM)
if linked in VIEWS and linked != view:
    # Before anything is drawn: the page's own address then shows in the address bar, so a copy of it
    # works too (with `view` as the root page instead, its sidebar link showed /compare, which is no page).
    # Repeated keys (layers=a&layers=b) as lists: switch_page keeps only the last of repeated pairs.
    st.switch_page(VIEWS[linked][0], query_params={k: st.query_params.get_all(k) for k in st.query_params if k != VIEW_PARAM})
link_notes = st.container()  # above the page: what a shared link asked for that could not be honoured
draw_sidebar()
run_page(page)
draw_notes(link_notes)
draw_share(view)
