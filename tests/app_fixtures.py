"""Fixtures for the dashboard tests (AppTest): a temporary cache, tiny render settings in the URL, and
an instrumented render path that counts (or forbids) renders and model loads."""
from __future__ import annotations

import base64
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from streamlit.testing.v1 import AppTest

from featviz_core.jobs import channels
from featviz_ui import models, rendering
from featviz_ui.views import LANDING, VIEW_PARAM

APP = str(Path(__file__).resolve().parent.parent / "app.py")
# Small enough for a couple of seconds per view on two CPU cores.
FAST = {"size": "64", "steps": "8"}
TWO_BY_TWO = {**FAST, "layers": ["blocks.1", "blocks.5"], "ch.blocks.1": "0-1", "ch.blocks.5": "3,5"}
TWO_BY_TWO_LABELS = ["blocks.1:0", "blocks.1:1", "blocks.5:3", "blocks.5:5"]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FEATVIZ_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FEATVIZ_HOSTED", raising=False)
    yield tmp_path / "cache"
    # Each test's app is a new server: the process-wide render service (its queue, and the share of a turn
    # each visitor has used: AppTest's sessions are named alike) must not carry over into the next test.
    rendering.render_service().close()
    rendering.render_service.clear()


class RenderCounter:
    def __init__(self):
        self.render_calls = 0
        self.model_loads = 0


@pytest.fixture
def counter(monkeypatch):
    """Counts calls of the core renderer (one per batch) and model loads made by the pages."""
    seen = RenderCounter()
    real_render, real_load = channels.render_channels, models.ModelRef.load

    def counting_render(*args, **kwargs):
        seen.render_calls += 1
        return real_render(*args, **kwargs)

    def counting_load(self):
        seen.model_loads += 1
        return real_load(self)

    monkeypatch.setattr(channels, "render_channels", counting_render)
    monkeypatch.setattr(models.ModelRef, "load", counting_load)
    return seen


def open_app(query: dict, page: str = "compare", timeout: float = 180) -> AppTest:
    """Run app.py as a visitor of a shared link: the page named by `view=` (as the Share control
    writes it), with the query parameters given."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in {**query, **({VIEW_PARAM: page} if page != LANDING else {})}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> list[str]:
    return [c for img in at.get("image") for c in (img.proto.imgs[0].caption,) if c]


def charts(at: AppTest) -> list[dict]:
    """The page's static curve charts (featviz_ui/svg_chart.py), read from their SVG as a person reads the
    lines: {"traces": [{"name", "colour", "y"}], "marker": the marked iteration or None}."""
    found = []
    for img in at.get("image"):
        url = img.proto.imgs[0].url
        if not url.startswith("data:image/svg+xml;base64,"):
            continue
        svg = ElementTree.fromstring(base64.b64decode(url.split(",", 1)[1]))
        lines = svg.iter("{http://www.w3.org/2000/svg}polyline")
        marker = [int(e.get("data-marker-step")) for e in svg.iter() if e.get("data-marker-step")]
        found.append({"traces": [{"name": e.get("data-name"), "colour": e.get("stroke"),
                                  "y": [float(v) for v in e.get("data-y").split(",")]} for e in lines],
                      "marker": marker[0] if marker else None})
    return found


def texts(elements) -> str:
    """The elements' text as a person reads it: markdown escapes and word joiners (urlstate.plain) removed."""
    text = "\n".join(str(e.value) for e in elements).replace("\u2060", "")
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


_WARM: list = []  # the one warm cache of the session (see below)


@pytest.fixture(scope="session")
def warm_cache_dir(tmp_path_factory):
    """A cache that already holds TWO_BY_TWO at FAST settings, rendered once through the core.
    Each test module imports this fixture, which makes it a fixture of that module: without the
    module-level memo, every module rendered its own (20-35 s each on a busy machine)."""
    from featviz_core import RenderSettings, Store, collect, load_model, render_channels

    if _WARM:
        return _WARM[0]
    directory = tmp_path_factory.mktemp("warm") / "cache"
    store = Store(str(directory))
    pairs = [tuple(label.split(":")) for label in TWO_BY_TWO_LABELS]
    collect(render_channels(load_model("lite0"), [(layer, int(c)) for layer, c in pairs],
                            RenderSettings(size=64, steps=8), store))
    store.close()
    _WARM.append(directory)
    return directory


@pytest.fixture
def warm_cache(warm_cache_dir, monkeypatch):
    monkeypatch.setenv("FEATVIZ_CACHE", str(warm_cache_dir))
    monkeypatch.delenv("FEATVIZ_HOSTED", raising=False)
    return warm_cache_dir
