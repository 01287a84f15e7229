"""The sidebar every page shares: model, weights upload and render settings, all kept in the URL.

`draw_sidebar()` runs in app.py before the page and leaves a `View` for the page (`current_view()`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import streamlit as st

from featviz_core import DEFAULT_MODEL, METHODS, FeatvizError, RenderSettings, Store
from featviz_core.models import UnusableWeightsError
from featviz_core.spec import INITS, SIZE_RANGE, STEPS_RANGE, check_whole
from featviz_core.spec import OBJECTIVES as KINDS
from featviz_core.store import CacheFolderError

from . import exemplars, urlstate
from .config import UPLOAD_ARCHITECTURES, Caps, caps, model_choices
from .models import ModelRef, current_store, current_uploads, model_ref, weights_file
from .views import hand_over_to_app

_VIEW = "_featviz_view"
WEIGHTS = "weights"  # URL parameter: content hash of an uploaded state dict kept on this server
_STORED = "_featviz_uploads"  # this session's file_uploader file ids -> upload ids
MAX_SEED = 2**31 - 1
_DISMISSED = "_featviz_dismissed_upload"  # the uploader's file the visitor turned off
_MISFITS = "_featviz_misfits"  # (model, weights id) -> why those weights do not fit that model
_UNUSABLE = "_featviz_unusable"  # the (model, weights id) misfits that fit but cannot give a picture


@dataclass
class View:
    """What every page renders with."""

    ref: ModelRef | None  # None when the chosen model could not be loaded (the error is shown)
    settings: RenderSettings
    store: Store
    caps: Caps


def current_view() -> View:
    """The View app.py left for this run; a page run on its own (AppTest of one page, or Streamlit's
    a server started in legacy pages/ mode) draws the shared sidebar itself."""
    if _VIEW not in st.session_state:
        return draw_sidebar()
    return st.session_state[_VIEW]


def _settings_widgets(limits: Caps) -> RenderSettings:
    default = RenderSettings()
    why = " (this public server's cap)" if limits.hosted else ""
    size, steps = min(default.size, limits.size), min(default.steps, limits.steps)
    urlstate.check_choice("method", METHODS, "method", default.method)
    urlstate.check_choice("init", INITS, "starting image", default.init)
    urlstate.check_choice("objective", KINDS, "objective", default.objective)
    urlstate.clamp_number("size", SIZE_RANGE[0], limits.size, "image size", size, why,
                          rule=lambda n: check_whole("size", n, SIZE_RANGE))
    urlstate.clamp_number("steps", STEPS_RANGE[0], limits.steps, "step count", steps, why,
                          rule=lambda n: check_whole("steps", n, STEPS_RANGE))
    urlstate.clamp_number("seed", 0, MAX_SEED, "seed", default.seed)
    method = st.selectbox("Method", METHODS, index=METHODS.index(default.method), key="method", bind="query-params",
                          help="fourier: decorrelated Fourier image (Olah et al.); maco: magnitude-constrained; "
                               "classic: Keras-style pixel ascent.")
    left, right = st.columns(2)
    size = left.number_input("Image size", SIZE_RANGE[0], limits.size, size, step=16, key="size", bind="query-params")
    steps = right.number_input("Steps", STEPS_RANGE[0], limits.steps, steps, step=8, key="steps", bind="query-params")
    left, right = st.columns(2)
    seed = left.number_input("Seed", 0, MAX_SEED, default.seed, key="seed", bind="query-params")
    init = right.selectbox("Starting image", INITS, index=INITS.index(default.init), key="init", bind="query-params")
    objective = st.selectbox("Objective", KINDS, index=KINDS.index(default.objective), key="objective",
                             bind="query-params", help="channel: mean of a feature map; neuron: its centre unit; "
                             "logit: a class score (layer 'logits', channels are class indices).")
    if limits.hosted:
        st.caption(f"Public server: at most {limits.size} px, {limits.steps} steps and {limits.channels} pictures "
                   "per view.")
    return RenderSettings(method=method, size=int(size), steps=int(steps), seed=int(seed), init=init,
                          objective=objective)


def _keep_upload(upload) -> str | None:
    """Stores an uploaded file once per upload (not on every rerun); its id, or None after an error."""
    stored = st.session_state.setdefault(_STORED, {})
    if upload.file_id not in stored:
        try:
            stored[upload.file_id] = current_uploads().put(upload.getvalue(), "weights")
        except FeatvizError as exc:
            st.error(urlstate.plain(str(exc)))
            return None
    return stored[upload.file_id]


def _linked_weights(model: str) -> str | None:
    """The link's weights id if it names an upload on this server; a note (and None) otherwise.
    Never deletes anything: the upload may be someone else's, for another model."""
    raw = urlstate.single_value(WEIGHTS)
    if raw is None:
        return None
    if model not in UPLOAD_ARCHITECTURES and ":" not in model:
        urlstate.note(f"The link names uploaded weights, but {model} takes none: showing its own weights.")
        return None
    try:
        weights_file(raw)
    except FeatvizError as exc:
        urlstate.note(f"{exc} Showing {model} with its packaged weights.", "error")
        return None
    return raw


def _weights_widgets(model: str) -> str | None:
    """Upload a state dict for the chosen architecture; its hash goes in the URL, the file stays here."""
    weights_id = _linked_weights(model)
    if model not in UPLOAD_ARCHITECTURES and ":" not in model:
        return None
    # A popover, not an expander: a closed popover's body is not drawn, so a visitor who never opens it
    # does not load the file uploader's scripts (bench/pageload.py).
    with st.popover("Your own weights", icon=":material/upload_file:", width="stretch"):
        upload = st.file_uploader(f"State dict for {model} (.pt / .pth)", type=["pt", "pth", "bin"], key="upload")
        dismissed = upload is not None and upload.file_id == st.session_state.get(_DISMISSED)
        stored = _keep_upload(upload) if upload is not None and not dismissed else None
        if stored:
            weights_id = stored
            if st.query_params.get(WEIGHTS) != stored:
                st.query_params[WEIGHTS] = stored
        if weights_id:
            st.caption(f"Using uploaded weights `{weights_id}`.")
            if st.button("Use the packaged weights"):
                del st.query_params[WEIGHTS]
                # The uploader still holds the file: without this, the next rerun would put it back.
                st.session_state[_DISMISSED] = upload.file_id if upload is not None else None
                weights_id = None
    return weights_id


def _model_ref(model: str, weights_id: str | None) -> ModelRef | None:
    """The model with the uploaded weights, or with its packaged ones when they do not fit: then the
    sidebar says why, and the upload stays (the link may be meant for another model)."""
    misfits = st.session_state.setdefault(_MISFITS, {})  # so a rerun does not read the file again
    if weights_id and (model, weights_id) not in misfits:
        try:
            return model_ref(model, weights_id)
        except UnusableWeightsError as exc:  # they fit, but cannot give a picture: say so plainly
            misfits[model, weights_id] = str(exc)
            st.session_state.setdefault(_UNUSABLE, set()).add((model, weights_id))
        except FeatvizError as exc:
            misfits[model, weights_id] = str(exc)
    if weights_id and (model, weights_id) in st.session_state.get(_UNUSABLE, ()):
        st.error(urlstate.plain(f"{misfits[model, weights_id]} Showing {model} with its packaged weights."))
    elif weights_id:
        st.warning(urlstate.plain(f"The uploaded weights {weights_id} do not fit {model}: {misfits[model, weights_id]} "
                                  f"Showing {model} with its packaged weights. The file stays on this server: choose "
                                  "the model it was saved from, or upload another."))
    try:
        return model_ref(model, None)
    except FeatvizError as exc:
        st.error(urlstate.plain(f"Could not load {model}. {exc}"))
    return None


def _server_settings() -> tuple[Caps, Store]:
    """The host's caps and cache; a bad environment variable stops every page with a message naming it."""
    try:
        return caps(), current_store()
    except CacheFolderError as exc:
        logging.getLogger("featviz").error("%s", exc)
        st.error("This server is misconfigured: its cache folder (FEATVIZ_CACHE) cannot be used. "
                 "The server's log says why.")
        st.stop()
    except FeatvizError as exc:  # a setting: names the variable and its valid values
        st.error(urlstate.plain(f"This server is misconfigured: {exc}"))
        st.stop()


OWN_SETTINGS = ("dream", "similarity")  # pages with their own settings (or none to render): only the model there


def draw_sidebar(page: str | None = None) -> View:
    """The sidebar of `page` (a view key): the model, and the render settings where they apply."""
    limits, store = _server_settings()
    with st.sidebar:
        urlstate.note_repeats()
        choices = model_choices()
        urlstate.check_choice("model", list(choices), "model", DEFAULT_MODEL)
        model = st.selectbox("Model", list(choices), index=list(choices).index(DEFAULT_MODEL), key="model",
                             bind="query-params", help="\n".join(f"- **{k}**: {v}" for k, v in choices.items()))
        weights_id = _weights_widgets(model)
        ref = _model_ref(model, weights_id)
        exemplars.draw_scan_note(ref)
        settings = RenderSettings()
        if page in OWN_SETTINGS:
            st.caption("This page's settings are on the page.")
        else:
            st.subheader("Render settings")
            try:
                settings = _settings_widgets(limits)
            except FeatvizError as exc:  # widgets bound their ranges, so only a core rule change lands here
                st.error(urlstate.plain(str(exc)))
        for notice in store.notices:  # the cache healed itself when this server opened it
            st.warning(notice, icon=":material/healing:")
    view = View(ref, settings, store, limits)
    st.session_state[_VIEW] = view
    return view


def open_page(title: str):
    """Every page's start: the shared view and its title; None (with a hint) when no model loaded."""
    hand_over_to_app()
    view = current_view()
    st.title(title)
    if view.ref is None:
        st.info("Choose a model that loads (the sidebar says what went wrong).")
        return None
    return view
