"""Models and the store as Streamlit resources, and `ModelRef`: what a view needs to know about a model
(layers, weights digest) without loading it.

A model's "card" (digest and layers) is kept in the store, so a freshly started server can serve a
fully cached view straight from disk: the model itself is loaded only when something must be rendered
or scored.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from featviz_core import RenderSettings, Store, resolve_targets, spec_for
from featviz_core.spec import CARD_SHAPE, ModelCard, Target
from featviz_core.store import UploadStore, cached_json, json_key, store_json, upload_quota

from .config import cache_dir, caps

if TYPE_CHECKING:
    from featviz_core import LoadedModel

CARD_VERSION = 3  # 2: the model's input channels (its cache keys read them); 3: every module that is a layer
UPLOADS_DIR = "uploads"  # under the cache directory


@st.cache_resource(show_spinner=False)
def open_store(directory: str) -> Store:
    return Store(directory)


def current_store() -> Store:
    return open_store(cache_dir())


@st.cache_resource(show_spinner="Loading model…", max_entries=3)
def _load(name: str, weights: str | None) -> LoadedModel:
    from featviz_core import load_model  # torch, imported when something must be rendered or scored

    return load_model(name, weights=weights)


def current_uploads() -> UploadStore:
    """Visitors' uploaded files, beside the cache and sharing its budget; a hosted server keeps fewer."""
    return UploadStore(os.path.join(cache_dir(), UPLOADS_DIR), *upload_quota(caps().hosted))


def weights_file(weights_id: str | None) -> str | None:
    """The uploaded state dict a link's id names (FeatvizError, without a path, if there is none)."""
    return current_uploads().path(weights_id, "weights") if weights_id else None


@dataclass
class ModelRef(ModelCard):
    """A model as the pages see it: its card (layers, and what its cache keys read) and which weights.
    `resolve_layer` / `check_channel` are LoadedModel's own (LayerCard's: they only read name, layers
    and aliases), so validation messages are identical whether or not it is loaded."""

    weights_id: str | None = None

    def load(self) -> LoadedModel:
        model = _load(self.name, weights_file(self.weights_id))
        if model.digest != self.digest:  # packaged weights changed since the card was written
            _write_card(current_store(), self.name, self.weights_id, model)
            self.digest = model.digest
        return model

    def targets(self, layer_channels) -> list[Target]:
        """Canonical targets; raises FeatvizError naming valid layers / channel ranges."""
        return resolve_targets(self, layer_channels)

    def key(self, target: Target, settings: RenderSettings) -> str:
        return spec_for(self, target, settings).key()

    def describe(self) -> dict:
        return {"name": self.name, "digest": self.digest, "weights": self.weights_id or "default"}


def _card_parts(name: str, weights_id: str | None) -> tuple:
    return ("ui", "card", CARD_VERSION, name, weights_id or "default")


def card_key(name: str, weights_id: str | None) -> str:
    """The store key of a model's card (its layers and digest, so a cached view needs no model)."""
    return json_key(_card_parts(name, weights_id))


def _write_card(store: Store, name: str, weights_id: str | None, model: LoadedModel) -> None:
    store_json(store, _card_parts(name, weights_id), ModelCard.of(model).to_json())


def model_ref(name: str, weights_id: str | None = None) -> ModelRef:
    """The card from the store, or load the model once to write it. Raises FeatvizError."""
    def card_of_model() -> dict:
        return ModelCard.of(_load(name, weights_file(weights_id))).to_json()

    card = cached_json(current_store(), _card_parts(name, weights_id), card_of_model, CARD_SHAPE,
                       valid=lambda card: bool(card["layers"]))
    return ModelRef(**vars(ModelCard.from_json(name, card)), weights_id=weights_id)
