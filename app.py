"""featviz dashboard: `streamlit run app.py` (add `-- --model pkg.mod:factory` to offer your own model).

Pages are declared here with st.navigation and explicit url_paths that differ from their file names, so
a shared deep link on a freshly started server runs this script (sidebar, state) instead of Streamlit's
legacy pages/ mode running the page file alone.
"""
import streamlit as st

from featviz_ui.share import draw_share
from featviz_ui.urlstate import draw_notes
from featviz_ui.sidebar import draw_sidebar

st.set_page_config(page_title="featviz", page_icon="🔬", layout="wide")

PAGES = [
    st.Page("pages/compare_page.py", title="Compare layers", icon="🧭", url_path="compare", default=True),
    st.Page("pages/curves_page.py", title="Activation curves", icon="📈", url_path="curves"),
    st.Page("pages/gallery_page.py", title="Layer gallery", icon="🖼️", url_path="gallery"),
    st.Page("pages/evolution_page.py", title="Evolution", icon="🎞️", url_path="evolution"),
]

page = st.navigation(PAGES)
link_notes = st.container()  # above the page: what a shared link asked for that could not be honoured
draw_sidebar()
page.run()
draw_notes(link_notes)
draw_share()
