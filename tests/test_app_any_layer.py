"""A link naming a module that is not a listed layer (an EfficientNet block's inner units) opens that
module's pictures in the dashboard, as lucent accepts any named module; the picker still defaults to
the listed layers."""
from __future__ import annotations

from tests.app_fixtures import FAST, cache_dir, captions, counter, open_app, texts  # noqa: F401

INNER = "blocks.5.0.bn2"  # the expanded units after the depthwise conv, read before their ReLU6 clamp


def test_a_link_naming_an_inner_module_renders_it(cache_dir, counter):
    at = open_app({**FAST, "layers": ["blocks.1", INNER], "ch.blocks.1": "0", f"ch.{INNER}": "3"})
    assert not (texts(at.error) + texts(at.warning)), texts(at.error) + texts(at.warning)
    (picker,) = [m for m in at.multiselect if m.label == "Layers"]
    assert picker.value == ["blocks.1", INNER]
    assert picker.options.index(INNER) > picker.options.index("logits")  # listed layers come first
    assert sorted(captions(at)) == ["blocks.1:0", f"{INNER}:3"]


def test_the_pickers_default_stays_the_listed_layers(cache_dir, counter):
    at = open_app({**FAST, "ch.blocks.1": "0", "ch.blocks.5": "0"})
    (picker,) = [m for m in at.multiselect if m.label == "Layers"]
    assert picker.value == ["blocks.1", "blocks.5"] and INNER in picker.options
