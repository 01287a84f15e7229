"""The Dream page's photo: a scikit-image sample by name, or an upload named in the link by its content id.

An upload is decoded (photos.read_photo: size, pixel and format checks) before it is stored, so a bad
photo is refused with a message and never kept. A stored one is kept by `UploadStore` with the
weights' quota, and leaves the server only as pictures shown to whoever has its link.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import streamlit as st

from featviz_core import FeatvizError
from featviz_core.errors import unknown_choice
from featviz_core.inputs import FORMATS, MAX_BYTES, SAMPLE_PHOTOS, photo_digest, read_photo, sample_photo

from . import urlstate
from .models import current_uploads

PHOTO = "photo"  # URL parameter: a sample photo's name or an upload's content id
DEFAULT_PHOTO = "chelsea"
NONE = "none"  # an optional photo (the guide) not chosen
_STORED = "_featviz_photo_uploads"  # this session's file_uploader file ids -> upload ids
UPLOAD_ID = re.compile(r"[0-9a-f]{20}")  # UploadStore's content ids
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif"]


@dataclass(frozen=True)
class Photo:
    name: str  # what the link says: a sample's name or an upload id
    pixels: np.ndarray
    digest: str

    @property
    def label(self) -> str:
        return self.name if self.name in SAMPLE_PHOTOS else f"your photo ({self.name[:8]}…)"


@st.cache_data(show_spinner=False, max_entries=16)
def _decoded(name: str) -> tuple[np.ndarray, str]:
    """A sample or a stored upload, decoded; FeatvizError for an unknown name or id (never a path)."""
    if name in SAMPLE_PHOTOS:
        pixels = sample_photo(name)
    else:
        with open(current_uploads().path(name, "photo"), "rb") as f:
            pixels = read_photo(f.read(MAX_BYTES + 1), name="The uploaded photo")
    return pixels, photo_digest(pixels)


def _store_upload(upload) -> str | None:
    """The upload's id once it decodes as a photo (checked before it is kept); None after a message."""
    stored = st.session_state.setdefault(_STORED, {})
    if upload.file_id not in stored:
        data = upload.getvalue()
        try:
            read_photo(data, name=f"'{upload.name}'")
            stored[upload.file_id] = current_uploads().put(data, "photo")
        except FeatvizError as exc:
            stored[upload.file_id] = None
            st.error(urlstate.plain(str(exc)))
    return stored[upload.file_id]


def pick_photo(param: str = PHOTO, label: str = "Photo", optional: bool = False) -> Photo | None:
    """Sample photo or upload, in the link as `param=` (`photo=`; the guide's `guide=`); None (after a
    message) when it cannot be read, or (`optional`) when none is chosen."""
    # max_upload_size: the browser refuses a larger photo before sending it, and says the real limit.
    upload = st.file_uploader(f"Upload a {label.lower()} ({', '.join(FORMATS)})", type=UPLOAD_TYPES,
                              key=f"{param}_upload", max_upload_size=MAX_BYTES // 2**20)
    default = NONE if optional else DEFAULT_PHOTO
    name = urlstate.single_value(param) or default
    if name != NONE and name not in SAMPLE_PHOTOS and not UPLOAD_ID.fullmatch(name):
        urlstate.note(f"{unknown_choice('sample photo', name, SAMPLE_PHOTOS)} Showing {default}.", "error")
        name = default
    uploaded = _store_upload(upload) if upload is not None else None
    if uploaded and uploaded != name and st.session_state.get(f"_{param}_last_upload") != uploaded:
        st.session_state[f"_{param}_last_upload"] = uploaded  # a new upload takes over the view once
        name = uploaded
    shown = SAMPLE_PHOTOS + (NONE,)
    options = ([NONE] if optional else []) + list(SAMPLE_PHOTOS) + ([name] if name not in shown else [])
    choice = st.selectbox(label, options, index=options.index(name), key=f"{param}_choice.{name}",
                          format_func=lambda o: o if o in shown else f"your photo ({o[:8]}…)",
                          help="A photo that ships with scikit-image, or the one uploaded (its link names it by "
                               "content hash).")
    if st.query_params.get(param) != choice and not (optional and choice == NONE and param not in st.query_params):
        st.query_params[param] = choice
    if choice == NONE:
        return None
    try:
        pixels, digest = _decoded(choice)
    except FeatvizError as exc:
        st.error(urlstate.plain(f"{exc} Choose a sample photo or upload one."))
        return None
    return Photo(choice, pixels, digest)
