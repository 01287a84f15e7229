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


def pick_photo() -> Photo | None:
    """Sample photo or upload, in the link as `photo=`; None (after a message) when it cannot be read."""
    # max_upload_size: the browser refuses a larger photo before sending it, and says the real limit.
    upload = st.file_uploader(f"Upload a photo ({', '.join(FORMATS)})", type=UPLOAD_TYPES, key="photo_upload",
                              max_upload_size=MAX_BYTES // 2**20)
    name = urlstate.single_value(PHOTO) or DEFAULT_PHOTO
    if name not in SAMPLE_PHOTOS and not UPLOAD_ID.fullmatch(name):
        urlstate.note(f"{unknown_choice('sample photo', name, SAMPLE_PHOTOS)} Showing {DEFAULT_PHOTO}.", "error")
        name = DEFAULT_PHOTO
    uploaded = _store_upload(upload) if upload is not None else None
    if uploaded and uploaded != name and st.session_state.get("_photo_last_upload") != uploaded:
        st.session_state["_photo_last_upload"] = uploaded  # a new upload takes over the view once
        name = uploaded
    options = list(SAMPLE_PHOTOS) + ([name] if name not in SAMPLE_PHOTOS else [])
    choice = st.selectbox("Photo", options, index=options.index(name), key=f"photo_choice.{name}",
                          format_func=lambda o: o if o in SAMPLE_PHOTOS else f"your photo ({o[:8]}…)",
                          help="A photo that ships with scikit-image, or the one uploaded (its link names it by "
                               "content hash).")
    if st.query_params.get(PHOTO) != choice:
        st.query_params[PHOTO] = choice
    try:
        pixels, digest = _decoded(choice)
    except FeatvizError as exc:
        st.error(urlstate.plain(f"{exc} Choose a sample photo or upload one."))
        return None
    return Photo(choice, pixels, digest)
