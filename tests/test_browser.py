"""Real browser: a shared link, or a page's own address, opened on a freshly started server draws real pictures.

Skips only when Chromium (or Playwright) is missing and FEATVIZ_REQUIRE_BROWSER is unset; CI sets it,
so a missing browser fails there instead of silently passing.
"""
from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
LABELS = [f"blocks.1:{c}" for c in range(4)] + [f"blocks.5:{c}" for c in range(4)]
SHARE_QUERY = "size=64&steps=8&ch.blocks.1=0-3&ch.blocks.5=0-3"


def _browser_or_skip():
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed"
    if reason:
        if os.environ.get("FEATVIZ_REQUIRE_BROWSER"):
            pytest.fail(f"FEATVIZ_REQUIRE_BROWSER is set but {reason}")
        pytest.skip(reason)
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """`streamlit run app.py` on a free port with an empty cache, healthy before the test starts."""
    port = _free_port()
    env = {**os.environ, "FEATVIZ_CACHE": str(tmp_path / "cache")}
    env.pop("FEATVIZ_HOSTED", None)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("streamlit did not become healthy:\n" + (tmp_path / "server.log").read_text()[-3000:])
        time.sleep(0.3)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@contextlib.contextmanager
def headless_chromium():
    """Debian's Chromium under playwright, without the background traffic this closed network refuses."""
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser():
    with headless_chromium() as chromium:
        yield chromium


def _open_first_visit(browser, url: str, heading: str, tiles: list[str]):
    """A page of a fresh server (pages/ exists, so it is in legacy-pages mode until app.py has run):
    the page drawn in full, its tiles settled, and no "Page not found" dialog."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url)
    page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
    _wait_for_tiles(page, tiles, timeout=120)
    assert page.get_by_text("Page not found").count() == 0
    return page


def _tile_texts(page) -> list[str]:
    # Captioned pictures only: a collapsed expander's images (Evolution's "All snapshots") read as ''.
    return [t.strip() for t in page.locator('[data-testid="stImage"]').all_inner_texts() if t.strip()]


def _wait_for_tiles(page, labels, timeout: float) -> float:
    start = time.perf_counter()
    while sorted(_tile_texts(page)) != sorted(labels):
        if time.perf_counter() - start > timeout:
            raise AssertionError(f"tiles never settled: {_tile_texts(page)}")
        page.wait_for_timeout(200)
    return time.perf_counter() - start


def test_share_link_on_a_fresh_server_draws_real_pictures(server, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    link = f"{server}/?{SHARE_QUERY}"  # the root opens Compare
    # First request to the fresh server: a share link to a page other than the landing one.
    evolution = _open_first_visit(browser, f"{server}/?view=evolution&size=64&steps=8&layer=blocks.1&channel=2",
                                  "Evolution", ["blocks.1:2 at iteration 8 of 8"])
    assert evolution.url.startswith(f"{server}/evolution?") and "view=" not in evolution.url  # the page's own address
    evolution.close()

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    start = time.perf_counter()
    page.goto(link)
    page.get_by_role("heading", name="Compare layers").wait_for(timeout=60_000)
    first_paint = time.perf_counter() - start
    rendered = _wait_for_tiles(page, LABELS, timeout=300)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

    # The deep link ran app.py (st.navigation), not Streamlit's legacy pages/ mode.
    assert page.get_by_text("Page not found").count() == 0
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Activation curves" in nav and "app" not in nav.split()
    assert page.get_by_label("Image size").input_value() == "64"

    for label, tile in zip(LABELS, page.locator('[data-testid="stImage"] img').all()):
        pixels = np.asarray(Image.open(io.BytesIO(tile.screenshot())).convert("RGB")).astype(float)
        assert pixels.shape[0] > 40, f"{label}: tile too small"
        assert pixels.std() > 12, f"{label}: flat picture (std {pixels.std():.1f})"
        assert np.ptp(pixels.reshape(-1, 3).mean(axis=0)) > 1 or pixels.std(axis=(0, 1)).max() > 20, f"{label}: gray"

    # The Share control holds the whole view.
    page.get_by_text("Share this view").click()
    page.wait_for_timeout(300)
    shared = page.locator('[data-testid="stPopoverBody"] code').inner_text()
    assert shared.startswith(f"{server}/compare?") and "ch.blocks.5=0-3" in shared and "size=64" in shared
    assert page.url.startswith(f"{server}/compare?")  # the root forwarded to the page's own address

    # A second visitor of the link is served from the disk cache.
    other = browser.new_page(viewport={"width": 1400, "height": 1100})
    start = time.perf_counter()
    other.goto(link)
    _wait_for_tiles(other, LABELS, timeout=60)
    cached_total = time.perf_counter() - start
    print(f"\nfirst paint {first_paint:.2f}s, fresh 2x4 render {rendered:.2f}s, cached view {cached_total:.2f}s")
    assert cached_total < 15, f"cached view took {cached_total:.1f}s"


@pytest.mark.parametrize("path, heading", [("curves", "Activation curves"), ("compare", "Compare layers")])
def test_a_copied_page_address_opens_that_page_on_a_fresh_server(server, browser, path, heading):
    """The address bar shows /curves?...; pasted as the first visit to a restarted server (legacy pages/
    mode, which runs pages/curves.py without app.py) it opens the same page with its settings."""
    page = _open_first_visit(browser, f"{server}/{path}?size=64&steps=8&ch.blocks.1=0-1&ch.blocks.5=0-1",
                             heading, ["blocks.1:0", "blocks.1:1", "blocks.5:0", "blocks.5:1"])
    assert page.url.startswith(f"{server}/{path}?")
    assert page.get_by_label("Image size").input_value() == "64"
    assert page.get_by_label("Steps").input_value() == "8"
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    titles = ["Compare layers", "Activation curves", "Layer gallery", "Evolution", "Dream", "Layer similarity",
              "Concepts"]
    assert all(t in nav for t in titles) and "app" not in nav.split(), nav  # app.py's pages, not pages/
    assert page.locator('[data-testid="stSidebarNavLink"]').count() == len(titles)
    if path == "curves":  # the chart comes once every picture is done: a static one, or plotly's when asked for
        page.locator('[data-testid="stImage"] img[src^="data:image/svg+xml"]').wait_for(timeout=30_000)
        page.get_by_text("Interactive chart").click()
        page.locator(".js-plotly-plot .scatterlayer .trace").nth(3).wait_for(timeout=60_000)
        traces = page.locator(".js-plotly-plot .scatterlayer .trace").count()
        assert traces == 4 and "interactive=true" in page.url, f"{traces} curves drawn"


def test_a_finished_tile_can_be_inspected_while_the_others_render(server, browser):
    """Inspect on the first finished tile: its details (self-check score) appear while the other pictures
    are still forming, and the render goes on to the end without starting over."""
    labels = [f"blocks.1:{c}" for c in range(4)] + [f"blocks.5:{c}" for c in range(16)]
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server}/?size=128&steps=64&ch.blocks.1=0-3&ch.blocks.5=0-15")
    inspect = page.get_by_role("button", name="Inspect")
    inspect.first.wait_for(timeout=120_000)
    inspect.first.click()
    page.get_by_text("Self-check z").wait_for(timeout=120_000)
    finished_then = inspect.count()
    assert finished_then < len(labels), "the render had ended before the details showed"
    assert page.get_by_text("forming").count() + page.get_by_text("waiting").count() > 0
    _wait_for_tiles(page, labels + [labels[0]], timeout=300)  # the grid, plus the inspected picture
    assert page.get_by_text("Self-check z").count() == 1
    print(f"\ndetails shown with {finished_then} of {len(labels)} pictures finished")


def test_a_dream_link_draws_the_photo_and_its_dreams(server, browser):
    """A Dream link as the first visit: the photo and each layer's dream, real pictures that differ from it."""
    captions = ["the photo", "blocks.1 at iteration 12", "blocks.5 at iteration 12"]
    page = _open_first_visit(browser, f"{server}/dream?photo=chelsea&layers=blocks.1&layers=blocks.5&size=96&dsteps=12",
                             "Dream", captions)
    pictures = [np.asarray(Image.open(io.BytesIO(img.screenshot())).convert("RGB").resize((96, 96))).astype(float)
                for img in page.locator('[data-testid="stImage"] img:not([src^="data:image/svg+xml"])').all()]
    assert len(pictures) == 3  # the photo and its two dreams (the curves chart is a picture too: left out)
    photo, *dreams = pictures
    for caption, dream in zip(captions[1:], dreams):
        assert dream.std() > 20, f"{caption}: flat picture"
        assert np.abs(dream - photo).mean() > 8, f"{caption}: no dream drawn over the photo"
        similar = np.corrcoef(dream.mean(axis=2).ravel(), photo.mean(axis=2).ravel())[0, 1]
        assert similar > 0.3, f"{caption}: not the photo"
    chart = page.locator('[data-testid="stImage"] img[src^="data:image/svg+xml"]')  # the curves, drawn by the server
    assert chart.evaluate("i => i.complete && i.naturalWidth > 0")
    assert base64.b64decode(chart.get_attribute("src").split(",", 1)[1]).count(b"<polyline") >= 2  # a curve per layer

    # A bad upload is said in one message and the dreams stay; a good one takes over, named by its content id.
    # The first uploader is the photo's; the second, the guide's.
    uploader = page.locator('[data-testid="stMainBlockContainer"] input[type="file"]').first
    uploader.set_input_files(files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not pixels at all"}])
    page.get_by_text("is not an image featviz can read").wait_for(timeout=30_000)
    assert page.url.count("photo=chelsea") == 1
    _wait_for_tiles(page, captions, timeout=30)  # the message's rerun redraws the same dreams (from the cache)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(buf, "PNG")
    uploader.set_input_files(files=[{"name": "mine.png", "mimeType": "image/png", "buffer": buf.getvalue()}])
    page.get_by_text("your photo (").first.wait_for(timeout=30_000)
    _wait_for_tiles(page, captions, timeout=120)
    assert re.search(r"photo=[0-9a-f]{20}", page.url), page.url


def test_a_two_model_compare_link_draws_both_models_pictures(server, browser):
    """Model against model: a link with `model2` draws lite0's and lite1's columns, each headed by its model."""
    query = "size=64&steps=8&ch.blocks.1=0-1&ch.blocks.5=0-1&model2=lite1&ch2.blocks.1=0-1&ch2.blocks.5=0-1"
    tiles = [f"{model} · {layer}:{c}" for model in ("lite0", "lite1") for layer in ("blocks.1", "blocks.5")
             for c in (0, 1)]
    page = _open_first_visit(browser, f"{server}/compare?{query}", "Compare layers", tiles)
    for header in ("lite0 · blocks.1 · 24 ch", "lite1 · blocks.5 · 192 ch"):
        assert page.get_by_text(header).count() == 1, header
    assert "model2=lite1" in page.url
    pictures = {label.strip(): tile for label, tile in zip(page.locator('[data-testid="stImage"]').all_inner_texts(),
                                                            page.locator('[data-testid="stImage"] img').all())}
    for label in tiles:
        pixels = np.asarray(Image.open(io.BytesIO(pictures[label].screenshot())).convert("RGB")).astype(float)
        assert pixels.shape[0] > 40 and pixels.std() > 12, f"{label}: no picture drawn (std {pixels.std():.1f})"


def test_the_inspect_panel_walks_down_the_network_and_the_address_keeps_the_walk(server, browser):
    """Built from under an inspected tile: its inputs' pictures with their attribution; pressing one's
    Inspect button walks to it (its own Built from then shows) and the page's address holds the walk."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server}/compare?size=64&steps=8&ch.blocks.1=0-1&ch.blocks.5=0-1&tile=blocks.5:1")
    page.get_by_text("Built from").first.wait_for(timeout=180_000)
    walk = page.get_by_role("button", name="Inspect blocks.5.2:")
    walk.first.wait_for(timeout=180_000)
    target = walk.first.inner_text().split("Inspect ")[-1].strip()
    walk.first.click()
    page.get_by_role("button", name="Back to blocks.5:1").wait_for(timeout=180_000)
    deadline = time.perf_counter() + 60
    while "walk=" not in page.url and time.perf_counter() < deadline:
        page.wait_for_timeout(200)
    assert "walk=" in page.url and "tile=blocks.5%3A1" in page.url.replace(":", "%3A"), page.url
    assert target.replace(":", "%3A") in page.url.replace(":", "%3A"), (target, page.url)
    assert page.get_by_text("attribution").count() + page.get_by_text("excites").count() > 0
