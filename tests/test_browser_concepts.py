"""Real browser: a Concepts link opened on a freshly started server draws each concept's real picture
beside the photo crops where it peaks (the page's own settings: nothing is patched in the server)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.test_browser import _tile_texts, _wait_for_tiles, browser, server  # noqa: F401

LABELS = [f"{layer}:{c}" for layer in ("blocks.3", "blocks.5") for c in range(4)]
EXEMPLARS = 3


def _pixels(locator) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB")).astype(float)


def test_a_concepts_link_draws_concept_pictures_and_their_photo_crops(server, browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server}/concepts?size=64&steps=8&layers=blocks.3&layers=blocks.5&k=4")
    page.get_by_role("heading", name="Concepts").wait_for(timeout=60_000)
    _wait_for_tiles(page, LABELS, timeout=600)  # learning both layers, then rendering their 8 pictures
    assert page.get_by_text("Page not found").count() == 0
    images = page.locator('[data-testid="stImage"]')
    captions = [t.strip() for t in images.all_inner_texts()]
    pictures = {label: images.nth(i).locator("img") for i, label in enumerate(captions) if label in LABELS}
    for label in LABELS:
        pixels = _pixels(pictures[label])
        assert pixels.shape[0] > 40 and pixels.std() > 12, f"{label}: no picture drawn (std {pixels.std():.1f})"
    crops = [images.nth(i).locator("img") for i, label in enumerate(captions) if not label]
    assert len(crops) >= len(LABELS) * EXEMPLARS  # each concept's photo crops (an open status may add none)
    assert all(_pixels(crop).std() > 5 for crop in crops[:len(LABELS) * EXEMPLARS])  # photos, not blank squares
    for text in ("concept 0 · ", "n = 42 photos", "Inspect a concept"):
        assert page.get_by_text(text).count() >= 1, text
    assert "layers=blocks.3&layers=blocks.5" in page.url and "k=4" in page.url  # the address keeps the view
