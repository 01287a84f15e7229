"""Curves, gallery and evolution pages under AppTest (small renders, state from the URL)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

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
    warm_cache,
    warm_cache_dir,
)


def figure(at, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def test_curves_page_draws_a_static_chart_at_once_with_one_line_per_channel(warm_cache, counter):
    at = open_app(TWO_BY_TWO, page="curves")
    assert counter.render_calls == 0 and not at.get("plotly_chart")  # no interactive chart unless asked for
    (chart,) = charts(at)
    assert [t["name"] for t in chart["traces"]] == TWO_BY_TWO_LABELS and len(chart["traces"][0]["y"]) == 8
    colours = [t["colour"] for t in chart["traces"]]
    assert colours[0] == colours[1] != colours[2] == colours[3]
    z = charts(open_app({**TWO_BY_TWO, "y": "z-score"}, page="curves"))[0]
    for before, after in zip(chart["traces"], z["traces"]):
        assert before["name"] == after["name"] and not np.allclose(before["y"], after["y"])


def test_curves_page_draws_one_trace_per_channel_coloured_by_layer(warm_cache, counter):
    at = open_app({**TWO_BY_TWO, "interactive": "true"}, page="curves")
    assert counter.render_calls == 0  # all four come from the warm cache
    fig = figure(at)
    traces = fig["data"]
    assert [t["name"] for t in traces] == TWO_BY_TWO_LABELS
    assert len(traces[0]["y"]) == 8  # one point per iteration
    colours = [t["line"]["color"] for t in traces]
    assert colours[0] == colours[1] != colours[2] == colours[3]
    assert "blocks.5:3" in traces[2]["hovertemplate"]
    assert sorted(captions(at)) == sorted(TWO_BY_TWO_LABELS)  # the final pictures beside the chart


def test_curves_page_switches_to_z_scores_from_the_url(warm_cache, counter):
    raw = figure(open_app({**TWO_BY_TWO, "interactive": "true"}, page="curves"))
    at = open_app({**TWO_BY_TWO, "y": "z-score", "interactive": "true"}, page="curves")
    z = figure(at)
    assert z["layout"]["yaxis"]["title"]["text"] == "z-score"
    for before, after in zip(raw["data"], z["data"]):
        assert before["name"] == after["name"] and not np.allclose(before["y"], after["y"])


def test_gallery_page_shows_a_page_of_channels_with_downloads(cache_dir, counter):
    at = open_app({**FAST, "layer": "blocks.1", "per": "16", "page": "2"}, page="gallery")
    assert captions(at) == [f"blocks.1:{c}" for c in range(16, 24)]  # blocks.1 has 24 channels
    assert at.selectbox(key="layer").value == "blocks.1" and at.number_input(key="page").value == 2
    labels = [b.proto.label for b in at.get("download_button")]
    assert any("Collage" in label for label in labels) and any("ZIP" in label for label in labels)

    assert not at.metric
    at.button(key="inspect.blocks.1:21").click().run()
    assert at.query_params["tile"] == "blocks.1:21"
    assert "blocks.1:21" in captions(at)[8]  # shown large under the grid (of 8 pictures)
    assert {m.label: m.value for m in at.metric}["Rank in layer"].endswith("/ 24")


def test_gallery_link_naming_a_tile_of_another_page_shows_no_details(cache_dir, counter):
    at = open_app({**FAST, "layer": "blocks.1", "per": "16", "page": "2", "tile": "blocks.1:3"}, page="gallery")
    assert at.selectbox(key="tile").value is None and not at.metric  # open_app checked for exceptions


def test_gallery_collage_and_zip_contents(warm_cache):
    """What the download buttons hand out, built the way the page builds it."""
    import zipfile

    from featviz_core import RenderSettings, Store
    from featviz_core.export.sheets import contact_sheet, manifest, zip_bundle
    from featviz_ui.models import model_ref

    store = Store(str(warm_cache))
    ref = model_ref("lite0")
    results = [store.get(ref.key(t, RenderSettings(size=64, steps=8)))
               for t in ref.targets([("blocks.1", 0), ("blocks.1", 1)])]
    sheet = contact_sheet(results, columns=8)
    assert np.asarray(sheet).std() > 10  # pictures, not blank tiles
    with zipfile.ZipFile(io.BytesIO(zip_bundle(results, manifest(results, {}, ref.describe()), sheet))) as zf:
        assert sorted(zf.namelist()) == ["blocks.1_0.png", "blocks.1_1.png", "contact_sheet.png", "manifest.json"]
        assert json.loads(zf.read("manifest.json"))["model"]["digest"] == ref.digest


def test_evolution_page_marks_the_chosen_iteration(warm_cache, counter):
    at = open_app({**FAST, "layer": "blocks.5", "channel": "3"}, page="evolution")
    assert counter.render_calls == 0
    slider = at.select_slider(key="step")
    steps = list(map(int, slider.options))
    assert steps[-1] == 8 and slider.value == 8
    middle = steps[len(steps) // 2]
    at = open_app({**FAST, "layer": "blocks.5", "channel": "3", "step": str(middle)}, page="evolution")
    assert at.select_slider(key="step").value == middle
    assert f"at iteration {middle} of 8" in captions(at)[0]
    assert [c["marker"] for c in charts(at)] == [middle]
    assert any("GIF" in b.proto.label for b in at.get("download_button"))


def test_evolution_page_reports_an_out_of_range_channel_in_the_link(warm_cache, counter):
    at = open_app({**FAST, "layer": "nope", "channel": "3"}, page="evolution")
    assert "nope" in texts(at.error) and "blocks.5" in texts(at.error)
    assert at.selectbox(key="layer").value == "blocks.1"  # falls back to the default layer, still draws
    assert captions(at)


def test_share_link_is_the_pages_own_address_with_every_parameter():
    from featviz_ui.share import share_link

    params = [("size", "64"), ("layers", "blocks.1"), ("layers", "blocks.5")]
    query = "size=64&layers=blocks.1&layers=blocks.5"
    assert share_link("http://host:8501/curves", "curves", params + [("view", "gallery")]) == f"http://host:8501/curves?{query}"
    assert share_link("http://host:8501/", "compare", params) == f"http://host:8501/compare?{query}"
    assert share_link("http://host:8501", "compare", [("size", "64")]) == "http://host:8501/compare?size=64"
    # A server proxied under a path keeps it.
    assert share_link("https://example.org/tools/featviz/gallery", "gallery", []) == "https://example.org/tools/featviz/gallery"
    assert share_link("https://example.org/tools/featviz/", "evolution", []) == "https://example.org/tools/featviz/evolution"
    assert share_link(None, "curves", [("size", "64")]) == "/curves?size=64"  # AppTest: no address


def test_server_config_watches_no_files():
    """`./run.sh` keeps .venv inside the repo; Streamlit's polling watcher then polls torch's files
    too and slowed the default view from 52 s to 321 s on 2 cores."""
    import tomllib

    with open(Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml", "rb") as f:
        server = tomllib.load(f)["server"]
    assert server["fileWatcherType"] == "none" and server["runOnSave"] is False
