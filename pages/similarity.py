"""Layer similarity: linear CKA between the layers of the sidebar's model, as a heatmap; a cell opens Compare
with its two layers."""
import streamlit as st

from featviz_ui import similarity
from featviz_ui.sidebar import open_page


def main() -> None:
    view = open_page("Layer similarity")
    if view is None:
        return
    st.caption("How alike two layers' representations are over photos (linear CKA, 1 = the same up to rotation "
               "and scale, 0 = unrelated). Neighbouring stages are alike; the stem and the head are not.")
    similarity.draw(view)


main()
