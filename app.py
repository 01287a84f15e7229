"""featviz dashboard: `streamlit run app.py` (add `-- --model pkg.mod:factory` to offer your own model).

The pages are declared in featviz_ui/views.py. A share link names its page with `?view=` at the
server's root, which becomes the default (root) page of this run; a page's own address
(`/curves?...`) works too, also as the first visit to a freshly started server.
"""
import streamlit as st

from featviz_ui.share import VIEW_PARAM, draw_share
from featviz_ui.sidebar import draw_sidebar
from featviz_ui.urlstate import draw_notes
from featviz_ui.views import declare_pages, run_page

st.set_page_config(page_title="featviz", page_icon=":material/visibility:", layout="wide")

view, page = declare_pages(st.query_params.get(VIEW_PARAM))
link_notes = st.container()  # above the page: what a shared link asked for that could not be honoured
draw_sidebar()
run_page(page)
draw_notes(link_notes)
draw_share(view)
