"""The atlas's circuit lists (export/site_circuits.py): Built from / Feeds into on each channel's page,
relative links to channels in the atlas (others by number), that open from file:// in headless Chromium;
`circuits=False` (`featviz atlas --no-circuits`) leaves them out."""
from __future__ import annotations

import re

import pytest

from featviz_core import RenderSettings
from featviz_core.export import site
from tests.conftest import rendered_store
from tests.test_browser import headless_chromium

SETTINGS = RenderSettings(size=32, steps=4)
LAYERS = {"relu1": list(range(8)), "conv2": [0, 1]}  # conv2 is one convolution of relu1


@pytest.fixture(scope="module")
def rendered(tiny, tmp_path_factory):
    with rendered_store(tiny, tmp_path_factory.mktemp("sitec") / "cache", LAYERS, SETTINGS) as store:
        yield store


def test_built_from_links_open_the_linked_channel_page_from_file_urls(tiny, rendered, tmp_path):
    site.export_from_store(str(tmp_path / "atlas"), tiny, SETTINGS, LAYERS, rendered, check=False)
    page = tmp_path / "atlas" / "layers" / "conv2" / "channel-0.html"
    html = page.read_text()
    assert "<h2>Built from</h2>" in html and "<h2>Feeds into</h2>" in html
    links = re.findall(r'<a class="circuit" href="([^"]+)">relu1:(\d+) \(([+-])', html)
    assert links and all(href == f"../relu1/channel-{c}.html" for href, c, _ in links)
    assert "relu2:" in html  # Feeds into: a layer not in the atlas, listed by number
    with headless_chromium() as chromium:
        tab = chromium.new_page()
        tab.goto(page.as_uri())
        tab.click("a.circuit >> nth=0")
        tab.wait_for_load_state()
        assert tab.url.endswith(f"/layers/relu1/channel-{links[0][1]}.html")
        assert tab.inner_text("h1") == f"relu1 · channel {links[0][1]}"
        tab.close()
    site.export_from_store(str(tmp_path / "plain"), tiny, SETTINGS, LAYERS, rendered, check=False, circuits=False)
    assert "Built from" not in (tmp_path / "plain" / "layers" / "conv2" / "channel-0.html").read_text()
