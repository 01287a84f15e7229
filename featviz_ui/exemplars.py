"""Dataset exemplars on the dashboard: a channel's best real photos beside its picture, the image folder
a scan used in the sidebar, and the self-check's second opinion (the picture against the best photo).

Scans are folders the server's owner names (`streamlit run app.py -- --exemplars ex/`, written by
`python -m featviz_core exemplars`). A link can only pick a model and a channel: it never names a
folder, and crops are opened by names built from the scan's own layers and two integers.
"""
from __future__ import annotations

import logging
import os

import streamlit as st

from featviz_core import ChannelResult, FeatvizError, Store
from featviz_core.analysis.exemplar_files import (
    crop_name,
    exemplar_ratio,
    exemplars_of,
    picture_peak,
    read_scan,
    whole_name,
)
from featviz_core.store import cached_json

from . import urlstate
from .config import exemplar_dirs
from .models import ModelRef

log = logging.getLogger(__name__)


@st.cache_data(show_spinner=False, max_entries=16)
def _read(directory: str, name: str, _mtime: float) -> dict | str:
    """The scan in `directory`, or what is wrong with it, the folder called `name` (visitors see no server
    path; the server log has it). Cached until exemplars.json changes."""
    try:
        return read_scan(directory, name)
    except FeatvizError as exc:
        log.warning("exemplar scan in %r not read: %s", directory, exc)  # the path, for the server's owner
        return str(exc)


def _scans() -> list[tuple[str, dict | str]]:
    found, dirs = [], exemplar_dirs()
    for n, directory in enumerate(dirs, 1):
        path = os.path.join(directory, "exemplars.json")
        name = f"the server's exemplar folder {n} of {len(dirs)}" if len(dirs) > 1 else "the server's exemplar folder"
        found.append((directory, _read(directory, name, os.path.getmtime(path) if os.path.isfile(path) else 0.0)))
    return found


def scan_for(ref: ModelRef) -> tuple[str, dict] | None:
    """The first configured scan of this model's weights, as (folder of the scan, document)."""
    for directory, doc in _scans():
        if isinstance(doc, dict) and doc["model"]["digest"] == ref.digest:
            return directory, doc
    return None


def draw_scan_note(ref: ModelRef | None) -> None:
    """Sidebar: which image folder this model's exemplars come from (and scans that could not be read)."""
    for _, doc in _scans():
        if isinstance(doc, str):
            st.warning(doc, icon=":material/photo_library:")
    found = scan_for(ref) if ref is not None else None
    if found:
        doc = found[1]
        images = doc.get("images")
        count = f"{images:,} photos" if isinstance(images, int) and not isinstance(images, bool) else "photos"
        st.caption(f"Dataset examples: {count} scanned in")  # the folder's name only, not the server's path
        st.code(os.path.basename(os.path.normpath(str(doc.get("folder", "")))), language=None)


def _ratio(ref: ModelRef, result: ChannelResult, top: list[dict], scan_key: str, store: Store) -> float | None:
    """The picture's peak activation over the best photo's; kept in the store (one forward pass once)."""
    def peak() -> dict:
        model = ref.load()
        return {"peak": picture_peak(model, result.image[..., :model.in_channels], result.layer, result.channel)}

    cached = cached_json(store, ("ui", "exemplar-ratio", result.key, scan_key), peak, {"peak": float})
    return exemplar_ratio(cached["peak"], top)


def _covering(ref: ModelRef, layer: str, channel: int) -> tuple[str, dict, list[dict]] | None:
    found = scan_for(ref)
    top = exemplars_of(found[1], layer, channel) if found else []
    return (*found, top) if top else None


def detail_columns(ref: ModelRef, result: ChannelResult, widths: tuple[int, int] = (2, 3)) -> tuple:
    """(picture, photos, rest) columns for a channel's details: a column for its exemplars beside the
    picture when a scan covers the channel, else `photos` is the picture's own column."""
    if _covering(ref, result.layer, result.channel) is None:
        picture, rest = st.columns(list(widths))
        return picture, picture, rest
    return tuple(st.columns([widths[0], widths[0], widths[1]]))


def draw_exemplars(area, ref: ModelRef, result: ChannelResult, store: Store) -> None:
    """Into `area`: the channel's best real photos, as receptive-field crops, with how the picture
    compares to the best of them. Nothing when no scan covers the channel."""
    covering = _covering(ref, result.layer, result.channel)
    if covering is None:
        return
    directory, doc, top = covering
    crops, wholes, captions, names = [], [], [], []
    for rank, entry in enumerate(top):
        path = os.path.join(directory, crop_name(result.layer, result.channel, rank))
        whole = os.path.join(directory, whole_name(result.layer, result.channel, rank))
        if os.path.isfile(path) and os.path.isfile(whole):
            crops.append(path)
            wholes.append(whole)
            captions.append(f"{entry['activation']:.1f}")
            names.append(os.path.basename(entry["image"]))
    with area:
        st.markdown("**Real photos that excite it most**")
        ratio = _ratio(ref, result, top, doc.get("scan_key", doc["folder"]), store)
        if ratio is not None:
            st.metric("Picture vs. best photo", f"{ratio:.2f}×", help="The channel's peak activation on this picture "
                      "(fitted to the model's input size) over its peak on the photo that excites it most.")
        if crops:
            st.image(crops, caption=captions, width=68)
            st.caption("Where each photo excites the channel most (its receptive field), best first, with the peak "
                       "activation. Photos: " + urlstate.plain(", ".join(names)))
            with st.expander("Whole photos"):
                st.image(wholes, caption=names, width="stretch")
