"""Model against model (Compare and Curves with `model2`) under AppTest, and the relative-depth pairing."""
from __future__ import annotations

import json

from featviz_core.jobs import channels
from featviz_ui import models
from featviz_ui.targets import paired_layers
from tests.app_fixtures import FAST, cache_dir, captions, counter, open_app, texts  # noqa: F401


def lite(sub_blocks: tuple[int, ...]) -> list[str]:
    """EfficientNet-Lite's layer list (lite0: 1, 1, 2, 2, 3 sub-blocks in blocks.1 … blocks.5)."""
    stages = [n for i, count in enumerate(sub_blocks, 1)
              for n in [f"blocks.{i}.{j}" for j in range(count)] + [f"blocks.{i}"]]
    return ["bn1", "blocks.0", *stages, "blocks.6", "bn2", "logits"]


LITE0, LITE2 = lite((1, 1, 2, 2, 3)), lite((2, 2, 3, 3, 4))
VGG16 = [f"features.{i}" for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)] + ["logits"]  # block4_conv3: .21
RESNET50 = ["relu"] + [n for i, blocks in enumerate((3, 4, 6, 3), 1)
                       for n in [f"layer{i}.{j}" for j in range(blocks)] + [f"layer{i}"]] + ["logits"]
# Two models, one channel per layer: lite0 is the sidebar's, lite1 the second.
TWO_MODELS = {**FAST, "ch.blocks.1": "0", "ch.blocks.5": "3", "model2": "lite1", "ch2.blocks.1": "1",
              "ch2.blocks.5": "2"}
TWO_MODEL_CAPTIONS = ["lite0 · blocks.1:0", "lite0 · blocks.5:3", "lite1 · blocks.1:1", "lite1 · blocks.5:2"]


def test_layers_pair_at_the_same_relative_depth():
    assert paired_layers(["blocks.1", "blocks.5"], LITE0, LITE2) == ["blocks.1", "blocks.5"]
    assert paired_layers(["features.21"], VGG16, RESNET50) == ["layer3"]  # VGG16 block4_conv3
    assert paired_layers(["features.0", "features.28"], VGG16, RESNET50) == ["relu", "layer4"]
    assert paired_layers(["layer3"], RESNET50, VGG16) == ["features.21"]
    assert paired_layers(["logits"], LITE0, VGG16) == ["logits"]
    assert paired_layers(["blocks.5.1", "blocks.5"], LITE0, LITE2) == ["blocks.5"]  # a sub-block: its depth, once
    assert paired_layers(["nowhere"], LITE0, LITE2) == []


def test_a_two_model_link_renders_both_models_side_by_side_and_reopens_from_the_cache(cache_dir, counter,
                                                                                        monkeypatch):
    at = open_app(TWO_MODELS)
    assert not at.error
    assert at.selectbox(key="model2").value == "lite1"
    assert at.multiselect(key="layers2").value == ["blocks.1", "blocks.5"]  # paired with lite0's by depth
    headers = [m.value for m in at.markdown if m.value.startswith("**")]
    assert headers == ["**lite0 · blocks.1 · 24 ch**", "**lite0 · blocks.5 · 192 ch**",
                       "**lite1 · blocks.1 · 24 ch**", "**lite1 · blocks.5 · 192 ch**"]
    assert captions(at) == TWO_MODEL_CAPTIONS
    assert [b.key for b in at.button] == ["inspect.lite0 · blocks.1:0", "inspect.lite0 · blocks.5:3"]
    assert at.query_params["model2"] == "lite1" and at.query_params["ch2.blocks.5"] == "2"
    assert counter.render_calls >= 2  # both models rendered (how many batches depends on what the server ran before)

    def forbidden(*_args, **_kwargs):
        raise AssertionError("a cached view called the renderer or loaded a model")

    monkeypatch.setattr(channels, "render_channels", forbidden)
    monkeypatch.setattr(models.ModelRef, "load", forbidden)
    assert captions(open_app(TWO_MODELS)) == TWO_MODEL_CAPTIONS


def test_choosing_a_second_model_offers_its_layers_and_a_link_restores_them(cache_dir, counter):
    at = open_app({**FAST, "ch.blocks.1": "0", "ch.blocks.5": "0"})
    assert at.selectbox(key="model2").value is None and [m.key for m in at.multiselect] == ["layers"]
    assert captions(at) == ["blocks.1:0", "blocks.5:0"]  # one model: captions as they always were
    at.selectbox(key="model2").set_value("lite1").run()
    assert at.multiselect(key="layers2").value == ["blocks.1", "blocks.5"]
    at.multiselect(key="layers2").set_value(["blocks.2"]).run()
    at.text_input(key="ch2.blocks.2").set_value("4").run()
    assert captions(at) == ["lite0 · blocks.1:0", "lite0 · blocks.5:0", "lite1 · blocks.2:4"]

    # The same view as a link (AppTest does not see the browser write widget changes into the address).
    link = {**FAST, "ch.blocks.1": "0", "ch.blocks.5": "0", "model2": "lite1", "layers2": ["blocks.2", "blocks.4"],
            "ch2.blocks.2": "4", "ch2.blocks.4": "1"}
    again = open_app(link)
    assert again.selectbox(key="model2").value == "lite1"
    assert again.multiselect(key="layers2").value == ["blocks.2", "blocks.4"]
    assert captions(again) == captions(at) + ["lite1 · blocks.4:1"]
    assert again.query_params["model2"] == "lite1" and again.query_params["layers2"] == ["blocks.2", "blocks.4"]
    assert not again.warning  # layers2 may repeat, like layers


def test_an_unknown_second_model_in_a_link_is_named_and_one_model_shows(cache_dir, counter):
    at = open_app({**FAST, "ch.blocks.1": "0", "ch.blocks.5": "0", "model2": "lite9"})
    assert "lite9" in texts(at.error) and "lite1" in texts(at.error)
    assert captions(at) == ["blocks.1:0", "blocks.5:0"]


def test_curves_of_two_models_name_their_model(cache_dir, counter):
    at = open_app({**TWO_MODELS, "layers": ["blocks.1"], "layers2": ["blocks.1"], "interactive": "true"}, page="curves")
    traces = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert [t["name"] for t in traces] == ["lite0 · blocks.1:0", "lite1 · blocks.1:1"]
    assert traces[0]["line"]["color"] != traces[1]["line"]["color"]
    assert sorted(captions(at)) == ["lite0 · blocks.1:0", "lite1 · blocks.1:1"]


def test_hosted_pictures_per_view_count_both_models(cache_dir, counter, monkeypatch):
    monkeypatch.setenv("FEATVIZ_HOSTED", "1")
    monkeypatch.setenv("FEATVIZ_MAX_CHANNELS", "3")
    at = open_app(TWO_MODELS)
    assert captions(at) == TWO_MODEL_CAPTIONS[:3] and "at most 3 pictures" in texts(at.info)
