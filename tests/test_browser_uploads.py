"""Uploads through a real browser: the file uploader stores weights by content, a link or model they do
not fit says why and keeps the file, and three tabs uploading the same file at once all succeed."""
from __future__ import annotations

import os
import shutil

import pytest
import torch

from featviz_core.store.uploads import UploadStore
from tests.app_fixtures import warm_cache_dir  # noqa: F401
from tests.test_browser import _wait_for_tiles, browser, server  # noqa: F401

VIEW = "size=64&steps=8&layers=blocks.1&layers=blocks.5&ch.blocks.1=0-1&ch.blocks.5=3,5"
LABELS = ["blocks.1:0", "blocks.1:1", "blocks.5:3", "blocks.5:5"]


@pytest.fixture
def warm_server(warm_cache_dir, tmp_path, request):
    """test_browser's server, over a copy of the warm cache (the view above is all cached)."""
    shutil.copytree(warm_cache_dir, tmp_path / "cache",
                    ignore=shutil.ignore_patterns("uploads"))  # others' tests' uploads
    return request.getfixturevalue("server")


def _upload_page(browser, url: str, weights):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    _wait_for_tiles(page, LABELS, timeout=90)
    page.get_by_role("button", name="Your own weights").click()  # a popover: its uploader is drawn when it opens
    page.locator('input[type="file"]').set_input_files(str(weights))
    return page


def _idle(page) -> None:
    """Until the page's script run has ended: a click during a run lands on a page about to be redrawn."""
    page.wait_for_function("() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState"
                           " === 'notRunning'", timeout=60_000)


def _wait_for_weights(page) -> str:
    page.wait_for_url("**weights=*", timeout=30_000)
    return page.url.split("weights=")[1].split("&")[0]


def test_uploads_are_kept_when_they_do_not_fit_and_same_file_uploads_do_not_collide(warm_server, browser, tmp_path):
    weights = tmp_path / "resnet_like.pt"
    torch.save({"fc.weight": torch.zeros(4, 4)}, weights)  # another network's state dict
    tabs = [_upload_page(browser, f"{warm_server}/compare?{VIEW}", weights) for _ in range(3)]
    ids = {_wait_for_weights(tab) for tab in tabs}  # three tabs uploaded the same file at once
    assert len(ids) == 1
    upload_id = ids.pop()
    uploads = UploadStore(str(tmp_path / "cache" / "uploads"), 2**30, 100)
    path = uploads.path(upload_id, "weights")
    for tab in tabs:
        tab.get_by_text("do not fit lite0").first.wait_for(timeout=30_000)
        assert tab.get_by_text("Traceback").count() == 0
        _wait_for_tiles(tab, LABELS, timeout=30)  # the packaged weights still show the view

    visitor = browser.new_page(viewport={"width": 1400, "height": 1000})  # someone opens the owner's link
    visitor.goto(f"{warm_server}/?{VIEW}&weights={upload_id}")
    visitor.get_by_text("do not fit lite0").first.wait_for(timeout=60_000)
    assert open(path, "rb").read() == weights.read_bytes()  # the file is still there, whole
    assert [str(f) for f in (tmp_path / "cache" / "uploads" / "weights").iterdir()] == [path]  # one file, no .part

    # The owner turns the upload off: it stays off (the uploader still holds the file), and stays on disk.
    owner = tabs[0]
    _idle(owner)
    button = owner.get_by_role("button", name="Use the packaged weights")
    if not button.is_visible():  # the popover closes when the page is clicked elsewhere
        owner.get_by_role("button", name="Your own weights").click()
    button.click()
    owner.wait_for_function("() => !location.search.includes('weights=')", timeout=30_000)
    owner.mouse.click(900, 300)  # focus the page, not an input
    owner.keyboard.press("r")  # Streamlit's rerun key: a later run must not put the upload back
    owner.wait_for_timeout(3000)
    assert "weights=" not in owner.url and owner.get_by_text("do not fit lite0").count() == 0
    assert os.path.exists(path)

    # What a person sees of hostile text in a link: the text as typed, never a link, image or markup
    # (GFM autolinks http://…, www.… and a@b.c even after markdown escapes; urlstate.plain breaks them).
    hostile = browser.new_page(viewport={"width": 1400, "height": 1000})
    hostile.goto(f"{warm_server}/?{VIEW}&model=[evil](http://evil.example)&init=![x](http://evil.example/i.png)"
                 "&method=www.evil.example&objective=:red[evil]&seed=mailto:a@evil.example&weights=<b>evil</b>")
    hostile.get_by_text("Valid objectives", exact=False).first.wait_for(timeout=60_000)
    shown = hostile.locator('[data-testid="stMain"]').inner_text().replace("\u2060", "")
    for typed in ("[evil](http://evil.example)", "![x](http://evil.example/i.png)", "www.evil.example", ":red[evil]",
                  "mailto:a@evil.example"):
        assert typed in shown, typed
    found = hostile.locator('a[href*="evil"], img[src*="evil"], b:text("evil")')
    assert found.count() == 0, [found.nth(i).evaluate("e => e.outerHTML") for i in range(found.count())]
