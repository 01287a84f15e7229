"""Compare page (the landing view) under AppTest: rendering, URL state, cache, details, bad input."""
from __future__ import annotations

from featviz_core.jobs import channels
from featviz_ui import models
from tests.app_fixtures import (  # noqa: F401
    FAST,
    TWO_BY_TWO,
    TWO_BY_TWO_LABELS,
    cache_dir,
    captions,
    charts,
    counter,
    open_app,
    texts,
)


def test_shared_link_renders_then_serves_a_new_visitor_from_the_cache(cache_dir, counter, monkeypatch):
    at = open_app(TWO_BY_TWO)
    assert captions(at) == TWO_BY_TWO_LABELS  # one column per layer, tiles labelled layer:channel
    assert at.multiselect(key="layers").value == ["blocks.1", "blocks.5"]
    assert at.number_input(key="size").value == 64 and at.number_input(key="steps").value == 8
    assert at.text_input(key="ch.blocks.5").value == "3,5"
    assert counter.render_calls == 2  # one batch per layer on a CPU
    assert not at.error

    # A second visitor of the same link: nothing may render and the model must not even be loaded.
    def forbidden(*_args, **_kwargs):
        raise AssertionError("a cached view called the renderer or loaded the model")

    monkeypatch.setattr(channels, "render_channels", forbidden)
    monkeypatch.setattr(models.ModelRef, "load", forbidden)
    again = open_app(TWO_BY_TWO)
    assert captions(again) == TWO_BY_TWO_LABELS


def test_defaults_are_one_early_and_one_deep_layer(cache_dir, counter):
    at = open_app({**FAST, "ch.blocks.1": "0", "ch.blocks.5": "0"})
    assert at.multiselect(key="layers").value == ["blocks.1", "blocks.5"]
    assert captions(at) == ["blocks.1:0", "blocks.5:0"]
    assert "layers" not in at.query_params  # defaults stay out of the link


def test_selecting_a_tile_shows_its_details_and_keeps_them_in_the_url(cache_dir, counter, monkeypatch):
    at = open_app(TWO_BY_TWO)
    at.selectbox(key="tile").set_value("blocks.5:3").run()
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"Self-check z", "Rank in layer", "Final activation"}
    assert metrics["Rank in layer"].endswith("/ 192")
    assert [[t["name"] for t in c["traces"]] for c in charts(at)] == [["blocks.5:3"]]  # its curve
    assert "blocks.5:3" in captions(at)[len(TWO_BY_TWO_LABELS)]  # the large picture, under the grid

    # Reopening the link restores the selection; the score comes from the store, not the model.
    monkeypatch.setattr(models.ModelRef, "load", lambda self: (_ for _ in ()).throw(AssertionError("model loaded")))
    again = open_app({**TWO_BY_TWO, "tile": "blocks.5:3"})
    assert {m.label: m.value for m in again.metric} == metrics


def test_inspect_button_under_a_tile_opens_that_tile(cache_dir, counter):
    at = open_app(TWO_BY_TWO)
    assert [b.key for b in at.button] == [f"inspect.{label}" for label in TWO_BY_TWO_LABELS]
    assert not at.metric  # nothing inspected yet
    at.button(key="inspect.blocks.1:1").click().run()
    assert at.selectbox(key="tile").value == "blocks.1:1"
    assert at.query_params["tile"] == "blocks.1:1"  # a shared link reopens the same tile
    assert "blocks.1:1" in captions(at)[len(TWO_BY_TWO_LABELS)]  # the large picture, under the grid
    assert {m.label for m in at.metric} == {"Self-check z", "Rank in layer", "Final activation"}


def test_bad_channel_list_is_reported_and_the_other_layer_still_draws(cache_dir, counter):
    at = open_app({**TWO_BY_TWO, "ch.blocks.1": "0-99"})
    assert "out of range" in texts(at.error) and "24 channels" in texts(at.error)
    assert captions(at) == ["blocks.5:3", "blocks.5:5"]
    at.text_input(key="ch.blocks.1").set_value("1, x").run()
    assert "Cannot read 'x'" in texts(at.error)


def test_unknown_layer_in_link_names_the_valid_layers(cache_dir, counter):
    at = open_app({**FAST, "layers": ["blocks.1", "blocks.99"], "ch.blocks.1": "0"})
    message = texts(at.error)
    assert "blocks.99" in message and "blocks.5" in message and "stem" in message
    assert captions(at) == ["blocks.1:0"]


def test_layer_alias_in_link_is_resolved(cache_dir, counter):
    at = open_app({**FAST, "layers": ["stem"], "ch.bn1": "2"})
    assert at.multiselect(key="layers").value == ["bn1"]
    assert captions(at) == ["bn1:2"]


def test_hosted_mode_clamps_link_values_and_shows_its_caps(cache_dir, counter, monkeypatch):
    monkeypatch.setenv("FEATVIZ_HOSTED", "1")
    monkeypatch.setenv("FEATVIZ_MAX_SIZE", "64")
    monkeypatch.setenv("FEATVIZ_MAX_CHANNELS", "3")
    at = open_app({**TWO_BY_TWO, "size": "4096"})
    assert at.number_input(key="size").value == 64
    assert "4096" in texts(at.warning) and "using 64" in texts(at.warning).lower()
    assert any("at most 64 px" in c.value for c in at.caption)
    assert len(captions(at)) == 3 and "at most 3 pictures" in texts(at.info)


def test_custom_models_come_from_the_server_flag_never_from_a_link(cache_dir, counter, monkeypatch):
    spec = "tests.tiny_model:make"
    at = open_app({**FAST, "model": spec, "ch.blocks.1": "0", "ch.blocks.5": "0"})
    assert at.selectbox(key="model").value == "lite0"
    assert spec in texts(at.error) and "lite0" in texts(at.error)
    monkeypatch.setattr("sys.argv", ["app.py", "--model", spec])
    at = open_app({**FAST, "model": spec, "layers": ["conv2"], "ch.conv2": "0-1"})
    assert at.selectbox(key="model").value == spec and not at.error
    assert captions(at) == ["conv2:0", "conv2:1"]


def test_hosted_queue_cap_leaves_pictures_out_with_a_note_that_stays(cache_dir, counter, monkeypatch):
    monkeypatch.setenv("FEATVIZ_HOSTED", "1")
    monkeypatch.setenv("FEATVIZ_MAX_QUEUED", "3")
    at = open_app(TWO_BY_TWO)
    assert "queues at most 3 pictures per visitor: 1 of this view's were left out" in texts(at.info)
    assert len(captions(at)) == 3  # three pictures drawn, the fourth never queued
