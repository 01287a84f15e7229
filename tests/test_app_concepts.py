"""The Concepts page under AppTest, on Lite0 with fewer positions and a shorter R² curve than the page's
own (concept_data.POSITIONS, KS) so a view learns in seconds: two layers' concept tiles (picture, photo
crops, importance) and their R² against k, agreeing with the core's documents; the same view from the
store without the model; an inspected concept's heatmaps, channels (links to Compare's Inspect) and its
match in the other column, agreeing with the core's matching; a second model's layer beside the first;
and a hostile link repaired out loud."""
from __future__ import annotations

import re

import pytest

from featviz_core import Store, load_model
from featviz_core.analysis import learn_concepts, match_concepts
from featviz_ui import concept_data, concepts, models
from tests.app_fixtures import FAST, captions, charts, open_app, texts
from tests.test_app_hostile_links import LINK, MARKDOWN, WWW, _markdown_fields

QUERY = {**FAST, "layers": ["blocks.1", "blocks.5"], "k": "4"}
LABELS = [f"{layer}:{c}" for layer in ("blocks.1", "blocks.5") for c in range(4)]


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A cache the page filled once (concepts of blocks.1 and blocks.5, their R² curves and pictures), and
    that first view; the page's settings stay patched for the module's tests."""
    directory = tmp_path_factory.mktemp("concepts") / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEATVIZ_CACHE", str(directory))
        patch.delenv("FEATVIZ_HOSTED", raising=False)
        patch.setattr(concept_data, "POSITIONS", 1500)
        patch.setattr(concept_data, "KS", (1, 2, 4))
        patch.setattr(concepts, "DEFAULT_K", 4)  # a repaired link lands on the learned view
        yield directory, open_app(QUERY, page="concepts", timeout=900)


def _core_doc(directory, layer: str) -> dict:
    """The core's own document of the page's request, read back from the store the page filled."""
    store = Store(str(directory))
    try:
        return learn_concepts(load_model("lite0"), layer, 4, concept_data.METHOD, 0, concept_data.photo_set(), store,
                              max_positions=concept_data.POSITIONS)
    finally:
        store.close()


def _jpegs_without_caption(at) -> int:
    return sum(1 for img in at.get("image") if img.proto.imgs[0].url.startswith("data:image/jpeg")
               and not img.proto.imgs[0].caption)


def test_two_layers_of_concept_tiles_and_their_r2_then_from_the_store(learned, monkeypatch):
    directory, at = learned
    assert captions(at) == LABELS  # every concept's picture, rendered through the render service
    assert _jpegs_without_caption(at) == len(LABELS) * concept_data.EXEMPLARS  # its photo crops
    for layer in ("blocks.1", "blocks.5"):
        doc = _core_doc(directory, layer)
        shown = [f"concept {c} · {e['importance']:.0%} of the layer · n = {doc['photos']['count']} photos"
                 for c, e in enumerate(doc["concepts"])]
        assert all(line in texts(at.caption) for line in shown), (layer, shown)
        assert f"R² {doc['r2']:.2f} over {doc['positions']:,} positions" in texts(at.caption)
    (chart,) = charts(at)
    assert [t["name"] for t in chart["traces"]] == ["blocks.1", "blocks.5"]
    for trace in chart["traces"]:
        assert len(trace["y"]) == 3 and all(0 <= y <= 1 for y in trace["y"])
        assert trace["y"][0] < trace["y"][-1]  # more concepts explain more (measured: 0.06 -> 0.26 on blocks.1)

    monkeypatch.setattr(models.ModelRef, "load", lambda self: (_ for _ in ()).throw(AssertionError("model loaded")))
    again = open_app(QUERY, page="concepts")
    assert captions(again) == LABELS and charts(again) == charts(at)
    assert _jpegs_without_caption(again) == _jpegs_without_caption(at)


def test_an_inspected_concept_shows_where_it_lives_its_channels_and_its_match(learned):
    directory, _ = learned
    at = open_app({**QUERY, "concept": "blocks.1:0"}, page="concepts")
    doc, doc5 = _core_doc(directory, "blocks.1"), _core_doc(directory, "blocks.5")
    heat = [c for c in captions(at) if c.startswith("photo ")]
    assert len(heat) == concept_data.HEATMAPS
    links = at.get("page_link")
    assert [link.proto.label.split(" ·")[0] for link in links] == \
        [f"blocks.1:{e['channel']}" for e in doc["concepts"][0]["channels"]]
    for link, entry in zip(links, doc["concepts"][0]["channels"]):
        assert link.proto.page.endswith("compare")
        assert f"tile=blocks.1%3A{entry['channel']}" in link.proto.query_string and "size=64" in link.proto.query_string
    model = load_model("lite0")
    found = match_concepts(model, doc, model, doc5, concept_data.photo_set())
    pair = next((p for p in found["pairs"] if p["concept"] == 0), None)
    said = texts(at.markdown) + texts(at.warning)
    if pair is None:
        assert "Unmatched in blocks.5: none of its concepts pairs with this one" in said
    else:
        assert f"blocks.5: concept {pair['concept2']} (r = {pair['score']:.2f})" in said
    unmatched = ", ".join(map(str, found["unmatched2"]))
    assert not found["unmatched2"] or f"Unmatched in blocks.5: concepts {unmatched} " in texts(at.caption)


def test_a_hostile_link_is_repaired_out_loud(learned):
    directory, _ = learned
    at = open_app({**QUERY, "k": LINK, "concept": [LINK, "blocks.9:99"], "layers": ["blocks.1", WWW, "blocks.5"]},
                  page="concepts")
    said = texts(at.error) + texts(at.warning) + texts(at.info)
    assert "concept count '[evil](http://evil.example)', which is not offered here; showing 4" in said
    assert "concept 'blocks.9:99', which is not offered here" in said and "Valid concepts: blocks.1:0" in said
    assert "gives concept 2 times" in said
    assert "Unknown layer 'www.evil.example'" in said
    assert captions(at) == LABELS  # the rest of the view as the link asked
    for text, where in _markdown_fields(at._tree):
        if "evil" in text:
            assert not MARKDOWN.search(text), f"markdown from the link in {where}: {text!r}"
        assert str(directory) not in text, f"a server path in {where}: {text!r}"
    assert not re.search(r"Traceback|File \"", said)


def test_a_second_model_stands_beside_the_first_and_its_concepts_are_matched(learned):
    at = open_app({**QUERY, "layers": ["blocks.1"], "model2": "lite1", "layers2": ["blocks.1"],
                   "concept": "blocks.1:0"}, page="concepts")
    tiles = [c for c in captions(at) if not c.startswith("photo ")]
    assert tiles == [f"{m} · blocks.1:{c}" for m in ("lite0", "lite1") for c in range(4)]
    assert [t["name"] for t in charts(at)[0]["traces"]] == ["lite0 · blocks.1", "lite1 · blocks.1"]
    assert [b.label for b in at.button if b.label == "Inspect"] == ["Inspect"] * 4  # under the first model's only
    said = texts(at.markdown) + texts(at.warning)
    assert "lite0 · blocks.1 · concept 0" in said
    assert re.search(r"lite1 · blocks\.1: concept \d \(r = 0\.\d\d\)", said) or "Unmatched in lite1 · blocks.1" in said
