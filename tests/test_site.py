"""Static atlas (featviz_core/export/site.py): a site built from tiny-model renders, opened from file:// in
headless Chromium (images load, links resolve, curves draw); names escaped; the dashboard link in
the share-link format; neighbours from the self-check; cached checks make a re-export free; each layer's
concepts page, linked from its channel pages, with real pictures."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image

from featviz_core import FeatvizError, RenderSettings
from featviz_core.analysis import selfcheck
from featviz_core.export import site
from featviz_core.store.disk import ChannelResult
from tests.conftest import count_forwards, rendered_store
from tests.test_browser import headless_chromium

SETTINGS = RenderSettings(size=32, steps=6)
LAYERS = {"relu3": list(range(12)), "conv1": [0, 1, 2]}
BASE = "http://127.0.0.1:8650/featviz/"


@pytest.fixture(scope="module")
def rendered(tiny, tmp_path_factory):
    """The tiny model's renders of LAYERS in a real store."""
    with rendered_store(tiny, tmp_path_factory.mktemp("site") / "cache", LAYERS, SETTINGS) as store:
        yield store


@pytest.fixture(scope="module")
def browser():
    with headless_chromium() as chromium:
        yield chromium


# Tiles load lazily (a layer page holds hundreds): load them all now and wait, then look.
LOAD_ALL = """() => Promise.all([...document.images].map(i => {
  i.loading = 'eager';
  return i.complete ? null : new Promise(done => { i.onload = i.onerror = done; });
}))"""
PAGE_FACTS = """() => ({
  images: [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
  links: [...document.querySelectorAll('a[href], link[href], script[src]')].map(e => e.href || e.src),
  paths: [...document.querySelectorAll('svg.curve path')].map(p => p.getAttribute('d')),
  pathLengths: [...document.querySelectorAll('svg.curve path')].map(p => p.getTotalLength()),
  styled: getComputedStyle(document.body).fontFamily.includes('system-ui'),
})"""


def test_site_from_file_urls_loads_every_image_and_link(tiny, rendered, browser, tmp_path, monkeypatch):
    monkeypatch.setattr(site, "PER_PAGE", 5)  # 12 channels of relu3 -> 3 pages
    index = site.export_from_store(str(tmp_path / "atlas"), tiny, SETTINGS, LAYERS, rendered, dashboard_url=BASE)
    pages = sorted(Path(tmp_path / "atlas").rglob("*.html"))
    assert len(pages) == 1 + (3 + 12) + (1 + 3)
    assert (tmp_path / "atlas" / "layers" / "relu3" / "page-3.html").is_file()
    tab = browser.new_page()
    external, curves = [], 0
    for html_file in pages:
        tab.goto(html_file.as_uri())
        tab.evaluate(LOAD_ALL)
        facts = tab.evaluate(PAGE_FACTS)
        assert facts["styled"], html_file
        assert facts["images"] and all(ok for _, ok in facts["images"]), (html_file, facts["images"])
        for url in facts["links"]:
            parts = urlsplit(url)
            if parts.scheme == "file":
                assert os.path.isfile(unquote(parts.path)), (html_file, url)
            else:
                external.append(url)
        if html_file.name.startswith("channel-"):
            assert len(facts["paths"]) == 1 and facts["paths"][0].count("L") == SETTINGS.steps - 1
            assert facts["pathLengths"][0] > 0
            curves += 1
    assert curves == 15
    assert external and all(u.startswith(BASE + "evolution?model=") for u in external)
    assert Path(index).read_text().count('class="tile"') == 8 + 3  # PREVIEW channels of relu3, all of conv1
    tab.close()


def test_names_are_escaped_and_folders_safe(tmp_path):
    hostile = '<img src=x onerror="alert(1)">/../'
    result = ChannelResult(hostile, 3, _png(), [0.1, 0.5, 0.4], [], 0.0, False, "k")
    index = site.write_site(str(tmp_path), {"name": "<script>alert(2)</script>", "weights_digest": "d"}, SETTINGS,
                            {hostile: [site.SiteChannel(result, 2.5, 1, [])]}, dashboard_url="https://h/?a=1&b=<2>")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(tmp_path in p.resolve().parents for p in written)
    text = "".join(p.read_text() for p in written if p.suffix == ".html")
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
    assert Path(index).is_file()
    with pytest.raises(FeatvizError, match="http:// or https://"):
        site.write_site(str(tmp_path / "js"), {"name": "m"}, SETTINGS, {}, dashboard_url="javascript:alert(1)")


def test_dashboard_link_is_the_dashboards_share_link():
    from featviz_ui.share import share_link
    from featviz_ui.views import VIEWS

    assert site.DASHBOARD_VIEW in VIEWS
    settings = RenderSettings(size=128, steps=48)
    for base in ("http://host:8501", "http://host:8501/", "https://example.org/proxy/featviz/"):
        params = [("model", "lite0"), ("layer", "blocks.3"), ("channel", "5"), ("size", "128"), ("steps", "48")]
        expected = share_link(base, site.DASHBOARD_VIEW, params)
        assert site.dashboard_link(base, "lite0", settings, "blocks.3", 5) == expected


def test_neighbours_are_the_channels_the_picture_excites_next(tiny, rendered):
    results = [rendered.get(site.spec_for(tiny, site.Target("relu3", c), SETTINGS).key()) for c in (0, 1)]
    scores = selfcheck.score_pictures(tiny, [r.image for r in results], "relu3", [0, 1], rendered)
    for score in scores:
        assert len(score.layer_z) == 16 and score.layer_z[score.channel] == pytest.approx(score.z)
        order = [int(c) for c in np.argsort(-np.array(score.layer_z)) if c != score.channel]
        assert selfcheck.neighbours(score, 5) == order[:5]
        assert score.rank == 1 + sum(z > score.z for z in score.layer_z)


def test_reexport_reuses_the_cached_self_check_and_skips_what_is_missing(tiny, rendered, tmp_path, caplog):
    site.export_from_store(str(tmp_path / "a"), tiny, SETTINGS, {"relu3": [0, 1, 2]}, rendered)
    with count_forwards(tiny.module) as calls, caplog.at_level(logging.WARNING, logger="featviz_core.export.site"):
        site.export_from_store(str(tmp_path / "b"), tiny, SETTINGS, {"relu3": [0, 1, 2, 15]}, rendered)
    assert calls == []
    assert "1 requested channels are not rendered yet" in caplog.text
    assert not (tmp_path / "b" / "layers" / "relu3" / "channel-15.html").exists()
    a = (tmp_path / "a" / "layers" / "relu3" / "channel-1.html").read_text()
    assert a == (tmp_path / "b" / "layers" / "relu3" / "channel-1.html").read_text()


def _png() -> bytes:
    from featviz_core.store.disk import png_bytes
    return png_bytes(np.full((8, 8, 3), 128, dtype=np.uint8))


def test_each_layer_has_a_concepts_page_linked_from_its_channels_with_real_pictures(tiny, rendered, browser, tmp_path,
                                                                                    monkeypatch):
    from featviz_core.analysis.photoset import PhotoSet
    from featviz_core.export import site_concepts

    monkeypatch.setattr(site_concepts, "ATLAS_PHOTOS", PhotoSet(size=64, crops=1, limit=6))  # 12 photos: seconds
    monkeypatch.setattr(site_concepts, "POSITIONS", 1500)
    out = tmp_path / "atlas"
    site.export_from_store(str(out), tiny, SETTINGS, LAYERS, rendered, check=False, circuits=False, concepts=3)
    tab = browser.new_page()
    for layer, channels in LAYERS.items():
        page = out / "layers" / layer / "concepts.html"
        assert page.is_file(), layer
        for c in channels:
            assert 'href="concepts.html"' in (out / "layers" / layer / f"channel-{c}.html").read_text()
        tab.goto(page.as_uri())
        tab.evaluate(LOAD_ALL)
        facts = tab.evaluate(PAGE_FACTS)
        assert len(facts["images"]) == 3 * (1 + site_concepts.EXEMPLARS), (layer, facts["images"])
        assert all(ok for _, ok in facts["images"]), facts["images"]  # each decoded by the browser
        for src, _ in facts["images"]:
            pixels = np.asarray(Image.open(out / "layers" / layer / unquote(src))).astype(float)
            assert pixels.std() > 1, (layer, src)  # a picture or a photo, not a blank square
        channel_links = [u for u in facts["links"] if "/channel-" in u]
        assert channel_links and all(os.path.isfile(unquote(urlsplit(u).path)) for u in channel_links)
    tab.close()
