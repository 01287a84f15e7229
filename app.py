"""featviz dashboard: `streamlit run app.py` (add `-- --model pkg.mod:factory` to offer your own model).

The pages are declared in featviz_ui/views.py: each at /<url_path>, the root forwarding to the one a
share link names with `?view=`.
"""
import streamlit as st

from featviz_ui.share import draw_share
from featviz_ui.sidebar import draw_sidebar
from featviz_ui.urlstate import draw_notes
from featviz_ui.views import ROOT, declare_pages, run_page

st.set_page_config(page_title="featviz", page_icon=":material/visibility:", layout="wide")

view, page = declare_pages()
if view == ROOT:
    page.run()  # forwards (st.switch_page) before anything is drawn
link_notes = st.container()  # above the page: what a shared link asked for that could not be honoured
draw_sidebar(view)
run_page(page)
draw_notes(link_notes)
draw_share(view)
