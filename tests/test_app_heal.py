"""The dashboard over a damaged cache: a garbled or truncated cache.db heals with a warning, and a model
card of the wrong shape is a miss, not a broken page."""
from __future__ import annotations

import shutil

import pytest

from featviz_core import Store
from featviz_ui import models
from tests.app_fixtures import FAST, TWO_BY_TWO, TWO_BY_TWO_LABELS, captions, open_app, texts, warm_cache_dir  # noqa: F401
from tests.test_cache_repair import garble, truncate


@pytest.fixture
def warm_copy(warm_cache_dir, tmp_path, monkeypatch):
    """A private copy of the warm cache, free to damage."""
    directory = tmp_path / "cache"
    shutil.copytree(warm_cache_dir, directory)
    monkeypatch.setenv("FEATVIZ_CACHE", str(directory))
    monkeypatch.delenv("FEATVIZ_HOSTED", raising=False)
    return directory


@pytest.mark.parametrize("damage", [garble, truncate])
def test_a_damaged_cache_db_heals_with_a_warning(warm_copy, damage):
    Store(str(warm_copy)).close()  # the model card and pictures are in it
    damage(warm_copy / "cache.db")
    at = open_app({**FAST, "layers": ["blocks.1"], "ch.blocks.1": "0"})  # open_app asserts no exception
    assert "started afresh" in texts(at.warning) and str(warm_copy) not in texts(at.warning)
    assert captions(at) == ["blocks.1:0"]  # rendered again into the fresh cache


def test_a_model_card_of_the_wrong_shape_is_written_again(warm_copy):
    open_app(TWO_BY_TWO)  # writes lite0's card
    store = Store(str(warm_copy))
    key = models.card_key("lite0", None)
    assert store.get_json(key, models.CARD_SHAPE) is not None
    store.put_json(key, {})
    store.close()
    at = open_app(TWO_BY_TWO)
    assert captions(at) == TWO_BY_TWO_LABELS and not at.error
    store = Store(str(warm_copy))
    assert store.get_json(key, models.CARD_SHAPE)["layers"]  # the card was written again
    store.close()


def test_a_misconfigured_server_names_the_variable(warm_copy, monkeypatch):
    monkeypatch.setenv("FEATVIZ_HOSTED", "1")
    monkeypatch.setenv("FEATVIZ_MAX_SIZE", "big")
    at = open_app(TWO_BY_TWO)
    assert "FEATVIZ_MAX_SIZE='big' is not a whole number from 32 to 1024" in texts(at.error)
    monkeypatch.setenv("FEATVIZ_MAX_SIZE", "64")
    monkeypatch.setenv("FEATVIZ_CACHE_GB", "-1")
    at = open_app(TWO_BY_TWO)
    assert "FEATVIZ_CACHE_GB='-1' is not a positive number of gigabytes" in texts(at.error)


def test_an_unusable_cache_folder_is_named_in_the_log_not_to_visitors(tmp_path, monkeypatch):
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("FEATVIZ_CACHE", str(blocked))
    at = open_app(TWO_BY_TWO)
    assert "its cache folder (FEATVIZ_CACHE) cannot be used" in texts(at.error)
    assert str(tmp_path) not in texts(at.error) and not at.exception
