"""featviz dashboard: `streamlit run app.py` (add `-- --model pkg.mod:factory` to offer your own model).

Pages are declared here with st.navigation and explicit url_paths that differ from their file names.
They live in views/, not pages/: a folder named pages/ beside app.py puts a freshly started server in
Streamlit's legacy mode until app.py has run once, and the first visitor of a deep link (/curves?...)
then gets a "Page not found" dialog, or the page file run without this script if the names matched.
"""
import streamlit as st

from featviz_ui.share import draw_share
from featviz_ui.urlstate import draw_notes
from featviz_ui.sidebar import draw_sidebar

st.set_page_config(page_title="featviz", page_icon=":material/visibility:", layout="wide")

PAGES = [
    # The default page is served at the root: a shared Compare link is http://host/?layers=...
    st.Page("views/compare_page.py", title="Compare layers", icon=":material/compare:", default=True),
    st.Page("views/curves_page.py", title="Activation curves", icon=":material/show_chart:", url_path="curves"),
    st.Page("views/gallery_page.py", title="Layer gallery", icon=":material/photo_library:", url_path="gallery"),
    st.Page("views/evolution_page.py", title="Evolution", icon=":material/animation:", url_path="evolution"),
]

page = st.navigation(PAGES)
link_notes = st.container()  # above the page: what a shared link asked for that could not be honoured
draw_sidebar()
page.run()
draw_notes(link_notes)
draw_share()
