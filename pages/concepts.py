"""Concepts: what 1 to 4 layers (of one model or two) hold, as the concepts dictionary learning finds in
their activations on natural photos; inspect a concept for where it lives, its channels and its match
in the other layers."""
import streamlit as st

from featviz_ui import concepts
from featviz_ui.sidebar import open_page


def main() -> None:
    view = open_page("Concepts")
    if view is None:
        return
    st.caption("Each concept is a direction in a layer's channels, found by dictionary learning over the layer's "
               "activations on natural photos (NMF, or a sparse autoencoder for a signed layer), pictured by "
               "gradient ascent along it, with the photo crops where it peaks.")
    concepts.draw(view)


main()
