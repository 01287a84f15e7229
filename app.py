"""featviz dashboard: `streamlit run app.py` (add `-- --model pkg.mod:factory` to offer your own model).

Pages are declared here with st.navigation, each with a url_path that differs from its file name.
While a fresh server has not yet run app.py, the `pages/` folder puts Streamlit in its legacy mode,
where any path but the root shows a "Page not found" dialog to the first visitor of a deep link.
Share links therefore always point at the root and name their page with `?view=`: the page named
there becomes the default (root) page of this run.
"""
import streamlit as st

from featviz_ui.share import VIEW_PARAM, draw_share
from featviz_ui.sidebar import draw_sidebar
from featviz_ui.urlstate import draw_notes

st.set_page_config(page_title="featviz", page_icon=":material/visibility:", layout="wide")

VIEWS = {  # url_path: (file, title, icon)
    "compare": ("pages/compare_page.py", "Compare layers", ":material/compare:"),
    "curves": ("pages/curves_page.py", "Activation curves", ":material/show_chart:"),
    "gallery": ("pages/gallery_page.py", "Layer gallery", ":material/photo_library:"),
    "evolution": ("pages/evolution_page.py", "Evolution", ":material/animation:"),
}
landing = st.query_params.get(VIEW_PARAM, "compare")
landing = landing if landing in VIEWS else "compare"
pages = {key: st.Page(path, title=title, icon=icon, url_path=key, default=(key == landing))
         for key, (path, title, icon) in VIEWS.items()}

page = st.navigation(list(pages.values()))
link_notes = st.container()  # above the page: what a shared link asked for that could not be honoured
draw_sidebar()
page.run()
draw_notes(link_notes)
draw_share(next(key for key, p in pages.items() if p.title == page.title))
