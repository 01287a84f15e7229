"""Dream page under AppTest: a link's photo and layers restored, dreams drawn with curves, slider and
downloads; a second visitor served from the cache; bad photos in a link said plainly."""
from __future__ import annotations

import os

import featviz_core.inputs.photos
import featviz_core.jobs.dreams
from featviz_core.store.uploads import UploadStore
from tests.app_fixtures import cache_dir, captions, charts, counter, open_app, texts  # noqa: F401

LINK = {"size": "64", "dsteps": "6", "photo": "astronaut", "layers": ["blocks.1", "blocks.5"]}


def dreams_run(monkeypatch) -> list:
    """Counts the page's dream batches (calls of the core's dream_channels)."""
    calls, real = [], featviz_core.jobs.dreams.dream_channels

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(featviz_core.jobs.dreams, "dream_channels", counting)
    return calls


def test_link_restores_the_view_then_a_new_visitor_is_served_from_the_cache(cache_dir, counter, monkeypatch):
    calls = dreams_run(monkeypatch)
    at = open_app(LINK, page="dream")
    assert at.selectbox(key="photo_choice.astronaut").value == "astronaut"
    assert at.multiselect(key="layers").value == ["blocks.1", "blocks.5"]
    assert at.number_input(key="dsteps").value == 6 and at.number_input(key="octaves").value == 4
    assert captions(at) == ["the photo", "blocks.1 at iteration 6", "blocks.5 at iteration 6"]
    assert len(at.get("download_button")) == 2 and not at.error
    (chart,) = charts(at)
    assert [t["name"] for t in chart["traces"]] == ["blocks.1", "blocks.5"] and len(chart["traces"][0]["y"]) == 6
    assert len(calls) == 2 and counter.model_loads == 1  # one batch per layer on a CPU, as for channel renders

    at.select_slider(key="step").set_value(1).run()  # the slider moves every dream to that iteration
    assert captions(at)[1:] == ["blocks.1 at iteration 1", "blocks.5 at iteration 1"]

    again = open_app(LINK, page="dream")  # a second visitor: no dream, no model load
    assert captions(again)[1:] == ["blocks.1 at iteration 6", "blocks.5 at iteration 6"]
    assert len(calls) == 2 and counter.model_loads == 1


def test_defaults_are_chelsea_one_early_and_one_deep_layer(cache_dir, counter, monkeypatch):
    dreams_run(monkeypatch)
    at = open_app({"size": "48", "dsteps": "2", "octaves": "1"}, page="dream")
    assert at.multiselect(key="layers").value == ["blocks.1", "blocks.5"]
    assert at.query_params["photo"] == "chelsea"  # the photo is always named in the link
    assert captions(at)[0] == "the photo" and len(captions(at)) == 3
    (uploader,) = [u for u in at.get("file_uploader") if u.proto.label.startswith("Upload a photo")]
    # the browser's own limit is the photo limit, not the weights' (the sidebar's uploader)
    assert uploader.proto.max_upload_size_mb == featviz_core.inputs.photos.MAX_BYTES // 2**20 == 25


def test_an_uploaded_photo_is_named_by_its_content_id(cache_dir, counter, monkeypatch):
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(buf, "PNG")
    upload_id = UploadStore(os.path.join(cache_dir, "uploads"), 2**30, 10).put(buf.getvalue(), "photo")
    at = open_app({"size": "48", "dsteps": "2", "octaves": "1", "photo": upload_id, "layers": "blocks.1"}, page="dream")
    assert at.selectbox(key=f"photo_choice.{upload_id}").value == upload_id
    assert captions(at) == ["the photo", "blocks.1 at iteration 2"] and not at.error


def test_bad_photos_in_a_link_are_said_and_the_page_keeps_working(cache_dir, counter, monkeypatch):
    calls = dreams_run(monkeypatch)
    junk = UploadStore(os.path.join(cache_dir, "uploads"), 2**30, 10).put(b"<html>not a photo</html>", "photo")
    cases = [(junk, "not an image"), ("0123456789abcdef0123", "not on this server"),
             ("../../etc/passwd", "Unknown sample photo"), ("chelsee", "Did you mean 'chelsea'")]
    for value, words in cases:
        at = open_app({"size": "48", "dsteps": "2", "octaves": "1", "photo": value, "layers": "blocks.1"}, page="dream")
        shown = texts(at.error)
        assert words in shown, (value, shown)
        assert str(cache_dir) not in shown and "Traceback" not in shown
        assert at.get("selectbox")  # the photo choice is still there to pick another
    at = open_app({"size": "48", "dsteps": "2", "octaves": "1", "layers": ["nope", "blocks.1"]}, page="dream")
    assert "Unknown layer 'nope'" in texts(at.error) and at.multiselect(key="layers").value == ["blocks.1"]
    assert calls == [1]  # unknown names fall back to chelsea: dreamed once, then from the cache


def test_every_target_on_the_page_and_only_its_settings_in_the_sidebar(cache_dir, counter, monkeypatch):
    dreams_run(monkeypatch)
    small = {"size": "48", "dsteps": "2", "octaves": "1"}
    at = open_app({**small, "dkind": "channel", "dlayer": "blocks.4", "ch": "3", "accent": "1"}, page="dream")
    assert captions(at) == ["the photo", "blocks.4:3 at iteration 2"] and not at.error
    assert not [w for w in at.sidebar.get("selectbox") if w.key in ("method", "init", "objective")]
    at = open_app({**small, "dkind": "logit", "cls": "285"}, page="dream")
    assert captions(at) == ["the photo", "logits:285 at iteration 2"] and not at.error
    at = open_app({**small, "layers": "blocks.2", "guide": "coffee"}, page="dream")
    assert captions(at) == ["the photo", "blocks.2 at iteration 2", "the guide"] and not at.error
    image = at.get("image")[1].proto.imgs[0]
    assert image.caption.startswith("blocks.2")
