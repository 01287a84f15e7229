"""Output files from rendered channels: contact sheet, evolution GIF, manifest, ZIP bundle."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from PIL import Image

from featviz_core import RenderSettings, collect, render_channels
from featviz_core.export import sheets

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def results(tiny):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return collect(render_channels(tiny, [("relu3", c) for c in range(5)], RenderSettings(size=32, steps=10),
                                       batch_size=5))
    finally:
        torch.set_num_threads(before)


def test_contact_sheet_places_every_picture(results):
    sheet = sheets.contact_sheet(results, gap=4)
    # 5 pictures -> 3 columns, 2 rows of 32-px tiles with a label strip under each.
    assert sheet.size == (3 * 36 + 4, 2 * (32 + sheets.LABEL_HEIGHT + 4) + 4)
    for i, r in enumerate(results):
        x, y = 4 + (i % 3) * 36, 4 + (i // 3) * (32 + sheets.LABEL_HEIGHT + 4)
        tile = sheet.crop((x, y, x + 32, y + 32))
        assert tile.tobytes() == Image.open(io.BytesIO(r.png)).convert("RGB").tobytes()
    with pytest.raises(ValueError):
        sheets.contact_sheet([])


def test_evolution_gif_has_every_snapshot(results):
    r = results[0]
    gif = Image.open(io.BytesIO(sheets.evolution_gif(r)))
    assert gif.format == "GIF" and gif.n_frames == len(r.snapshots) and gif.size == (32, 32)


def test_manifest_and_zip_bundle(results):
    doc = sheets.manifest(results, RenderSettings(size=32, steps=10).to_query(), {"name": "tiny"})
    items = doc["items"]
    assert [i["png"] for i in items] == [f"relu3_{c}.png" for c in range(5)]
    assert all(i["steps"] == 10 and i["activation_final"] == r.curve[-1] and i["key"] == r.key
               for i, r in zip(items, results))
    data = sheets.zip_bundle(results, doc, sheets.contact_sheet(results))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert names == {f"relu3_{c}.png" for c in range(5)} | {"manifest.json", "contact_sheet.png"}
        assert zf.read("relu3_2.png") == results[2].png
        assert json.loads(zf.read("manifest.json")) == doc
