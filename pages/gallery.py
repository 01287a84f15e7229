"""Layer gallery: every channel of one layer, a page at a time, like an atlas; inspect a tile; collage and ZIP
downloads."""
import io
import math

import streamlit as st

from featviz_core.export import contact_sheet, manifest, zip_bundle
from featviz_ui import rendering, urlstate
from featviz_ui.details import TILE_KEY, InspectSection
from featviz_ui.picker import pick_layer
from featviz_ui.sidebar import open_page

PAGE_SIZES = (16, 32, 64)


def main() -> None:
    view = open_page("Layer gallery")
    if view is None:
        return
    pick, per, number = st.columns([3, 2, 2])
    with pick:
        layer = pick_layer(view)
    channels = view.ref.info(layer).channels
    with per:
        urlstate.check_choice("per", PAGE_SIZES, "page size", PAGE_SIZES[0])
        per_page = st.segmented_control("Per page", PAGE_SIZES, default=PAGE_SIZES[0], key="per",
                                        bind="query-params") or PAGE_SIZES[0]
    if per_page > view.caps.channels:
        st.info(f"This server draws at most {view.caps.channels} pictures per view: {view.caps.channels} per page "
                f"instead of {per_page}.")
        per_page = view.caps.channels
    pages = math.ceil(channels / per_page)
    urlstate.clamp_number("page", 1, pages, "page", 1, f" (pages of {per_page} channels of {layer})")
    page = number.number_input(f"Page (of {pages})", 1, pages, 1, key="page", bind="query-params")
    first = (page - 1) * per_page
    targets = view.ref.targets([(layer, c) for c in range(first, min(channels, first + per_page))])
    st.caption(f"Channels {first}–{first + len(targets) - 1} of {channels}.")
    status = st.empty()
    downloads = st.container()
    slots = rendering.tile_slots([str(t) for t in targets], 8)
    inspect = InspectSection(view.ref, [str(t) for t in targets], view.store)
    results = rendering.render(view.ref, targets, view.settings, view.store, slots, status, inspect_key=TILE_KEY,
                               before_waiting=inspect.draw)
    inspect.draw(results)
    done = [results[str(t)] for t in targets if str(t) in results]
    if done:
        offer_downloads(downloads, view, done, {"layer": layer, "page": page, "per_page": per_page})


def offer_downloads(area, view, done, where: dict) -> None:
    """The page's collage as a PNG, and a ZIP of its pictures with their manifest: built when a button
    is pressed (Streamlit runs the callable then), not on every view of the page."""
    doc = manifest(done, {**where, **view.settings.__dict__}, view.ref.describe())
    name = f"{view.ref.name}_{where['layer']}_p{where['page']}"

    def collage() -> bytes:
        png = io.BytesIO()
        contact_sheet(done, columns=8).save(png, format="PNG")
        return png.getvalue()

    left, right = area.columns(2)
    left.download_button("⬇ Collage PNG", collage, f"{name}.png", "image/png", on_click="ignore", width="stretch")
    right.download_button("⬇ ZIP of PNGs + manifest", lambda: zip_bundle(done, doc, contact_sheet(done, columns=8)),
                          f"{name}.zip", "application/zip", on_click="ignore", width="stretch")


main()
