"""The Layer similarity page under AppTest: a CKA heatmap of the model's stage layers (by default), read
back from the store on a second visit, and a selected cell links to Compare with its two layers."""
from __future__ import annotations

import json

import streamlit as st

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
    assert "Select a cell" in texts(at.caption)
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
