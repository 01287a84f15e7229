"""The Layer similarity page under AppTest: a CKA heatmap of the model's stage layers (by default) with
each cell's interval on hover and n said, read back from the store on a second visit, no render settings
in the sidebar, a photo folder the server's owner lists (by name, never its path), and a selected cell
links to Compare with its two layers."""
from __future__ import annotations

import json
import sys

import streamlit as st
from PIL import Image

from featviz_core.analysis.selfcheck import natural_photos
from featviz_ui import models, similarity
from tests.app_fixtures import FAST, cache_dir, open_app, texts  # noqa: F401

STAGES = ["bn1"] + [f"blocks.{i}" for i in range(7)] + ["bn2"]


def _heatmap(at) -> dict:
    (chart,) = at.get("plotly_chart")
    (trace,) = json.loads(chart.proto.spec)["data"]
    return trace


def test_heatmap_of_the_stage_layers_then_from_the_store(cache_dir, monkeypatch):
    at = open_app(FAST, page="similarity")
    trace = _heatmap(at)
    assert trace["type"] == "heatmap" and trace["x"] == STAGES and trace["y"] == STAGES
    assert len(trace["z"]) == 9 and all(len(row) == 9 for row in trace["z"])
    assert all(abs(trace["z"][i][i] - 1) < 1e-6 for i in range(9))
    ci = trace["customdata"]
    assert all(ci[i][j][0] <= trace["z"][i][j] + 0.05 and trace["z"][i][j] - 0.05 <= ci[i][j][1]
               for i in range(9) for j in range(9))
    assert "interval" in trace["hovertemplate"]
    assert "Select a cell" in texts(at.caption)
    assert "over 98 images of 14 photos" in texts(at.caption) and "too few" not in texts(at.caption)
    assert "Render settings" not in [h.value for h in at.sidebar.subheader]
    monkeypatch.setattr(models.ModelRef, "load", lambda self: (_ for _ in ()).throw(AssertionError("model loaded")))
    assert _heatmap(open_app(FAST, page="similarity"))["z"] == trace["z"]


def test_a_selected_cell_links_to_compare_with_its_two_layers(cache_dir, monkeypatch):
    real = st.plotly_chart

    def selecting(*args, **kwargs):
        real(*args, **kwargs)
        return {"selection": {"points": [{"x": "blocks.5", "y": "blocks.1", "z": 0.8}]}}

    monkeypatch.setattr(st, "plotly_chart", selecting)
    at = open_app({**FAST, similarity.LAYERS_KEY: "blocks.1,blocks.5,bn1"}, page="similarity")
    assert _heatmap(at)["x"] == ["bn1", "blocks.1", "blocks.5"]  # shallow to deep
    assert at.query_params[similarity.LAYERS_KEY] == "blocks.1,blocks.5,bn1"
    (link,) = at.get("page_link")
    assert link.proto.page.endswith("compare") and "blocks.1 and blocks.5" in link.proto.label
    assert "layers=blocks.1&layers=blocks.5" in link.proto.query_string and "size=64" in link.proto.query_string


def test_a_listed_photo_folder_is_offered_by_name_and_measured_on(cache_dir, tmp_path, monkeypatch):
    folder = tmp_path / "server" / "holiday"
    folder.mkdir(parents=True)
    for i, photo in enumerate(natural_photos()[:8]):
        Image.fromarray(photo).save(folder / f"{i}.jpg")
    broken = tmp_path / "server" / "broken"
    broken.mkdir()
    monkeypatch.setattr(sys, "argv", ["app.py", "--photos", str(folder), "--photos", str(broken)])
    query = {**FAST, similarity.LAYERS_KEY: "blocks.1,blocks.5"}
    at = open_app({**query, similarity.PHOTOS_KEY: "holiday"}, page="similarity")
    (picker,) = [s for s in at.selectbox if s.label == "Photos"]
    assert picker.options == [similarity.NATURAL, "holiday", "broken"] and picker.value == "holiday"
    assert "over 8 images of 8 photos" in texts(at.caption) and "too few" in texts(at.caption)
    assert len(_heatmap(at)["z"]) == 2
    at = open_app({**query, similarity.PHOTOS_KEY: "broken"}, page="similarity")
    (error,) = at.error
    assert "'broken'" in error.value and "holds no JPEG" in error.value and str(tmp_path) not in error.value
    at = open_app({**query, similarity.PHOTOS_KEY: "/etc"}, page="similarity")
    assert any("holiday" in e.value and "/etc" in e.value for e in at.error)  # named with the valid choices
    assert len(_heatmap(at)["z"]) == 2  # the natural photos instead
