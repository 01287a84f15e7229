"""Exemplars on the dashboard (AppTest, real Lite0): a scan named on the server's command line shows
beside an inspected channel, with the picture-versus-best-photo ratio; the sidebar names its folder."""
from __future__ import annotations

import os
import sys

import pytest

from featviz_core import load_model
from featviz_core.analysis.exemplar_files import write_outputs
from featviz_core.analysis.scan import scan_folder
from tests.app_fixtures import FAST, TWO_BY_TWO, cache_dir, counter, open_app, texts  # noqa: F401
from tests.exemplar_fixtures import build_folder

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def lite0_scan(tmp_path_factory):
    """A real Lite0 scan of the test photos (blocks.1 and blocks.5, top 3), written as the CLI does."""
    root = tmp_path_factory.mktemp("scan")
    folder = build_folder(root)
    *_, last = scan_folder(load_model("lite0", device="cpu"), str(folder), ["blocks.1", "blocks.5"], 3, None)
    write_outputs(last.result, str(folder), str(root / "ex"))
    return root / "ex", last.result


def image_captions(at) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def test_inspected_channel_shows_its_exemplars_and_the_ratio(lite0_scan, cache_dir, counter, monkeypatch):
    directory, doc = lite0_scan
    wanted = [f"{e['activation']:.1f}" for e in doc["layers"]["blocks.5"]["3"]]
    assert len(wanted) == 3

    plain = open_app({**TWO_BY_TWO, "tile": "blocks.5:3"})  # no scan configured: no exemplars
    assert not set(wanted) & set(image_captions(plain))
    assert "Picture vs. best photo" not in [m.label for m in plain.metric]

    monkeypatch.setattr(sys, "argv", ["app.py", "--exemplars", str(directory)])
    at = open_app({**TWO_BY_TWO, "tile": "blocks.5:3"})
    shown = image_captions(at)
    names = [e["image"].split("/")[-1] for e in doc["layers"]["blocks.5"]["3"]]
    # The crops, best first, beside the inspected picture, then the whole photos in an expander.
    start = shown.index(wanted[0])  # after them, the circuit's pictures (Built from, Feeds into)
    assert shown[start:start + 6] == wanted + names
    assert any(texts([c]).endswith("Photos: " + ", ".join(names)) for c in at.caption)  # as a person reads it
    assert "Whole photos" in [e.label for e in at.expander]
    ratio = {m.label: m.value for m in at.metric}["Picture vs. best photo"]
    assert float(ratio.rstrip("×")) > 0
    # which folder (its name, no server path)
    assert os.path.basename(doc["folder"]) in [c.value for c in at.sidebar.code]
    assert all(doc["folder"] not in c.value for c in at.sidebar.code)
    at.selectbox(key="tile").set_value("blocks.1:0").run()  # another layer of the scan
    crops = [f"{e['activation']:.1f}" for e in doc["layers"]["blocks.1"]["0"]]
    shown = image_captions(at)
    assert shown[shown.index(crops[0]):][:3] == crops

    # Evolution has its own view of a channel: the same exemplars beside its picture.
    evolution = open_app({**FAST, "layer": "blocks.5", "channel": "3"}, page="evolution")
    assert [c for c in image_captions(evolution) if c in wanted] == wanted
    assert "Picture vs. best photo" in [m.label for m in evolution.metric]
