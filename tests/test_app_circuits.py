"""The Inspect panel's circuit under AppTest: an inspected tile shows what it is built from (pictures of
its top inputs with attribution and sign) and what it feeds into; pressing an input walks to it, and
the walk is in the URL, so the link reopens the same step without measuring again."""
from __future__ import annotations

import featviz_core.analysis as analysis
from featviz_ui import circuits
from tests.app_fixtures import TWO_BY_TWO, captions, open_app, texts, warm_cache, warm_cache_dir  # noqa: F401


def _walk_buttons(at) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.startswith("walk.in.")]


def test_inspect_shows_built_from_and_a_walk_down_that_the_url_keeps(warm_cache, monkeypatch):
    at = open_app({**TWO_BY_TWO, "tile": "blocks.5:3"})
    page = texts(at.markdown)
    assert "Built from" in page and "blocks.5.2" in page and "Feeds into" in page and "blocks.6" in page
    buttons = _walk_buttons(at)
    assert len(buttons) == circuits.TOP and all(k.startswith("walk.in.blocks.5.2:") for k in buttons)
    signs = [c.value for c in at.caption if "excites" in str(c.value) or "inhibits" in str(c.value)]
    assert len(signs) >= circuits.TOP and all(s[0] in "+-" for s in signs[:circuits.TOP])
    assert f"{buttons[0][len('walk.in.'):]}" in captions(at)  # the input's picture, rendered

    first = buttons[0][len("walk.in."):]
    at.button(key=buttons[0]).click().run()
    assert not at.exception
    assert at.query_params["walk"] == first and at.query_params["tile"] == "blocks.5:3"
    assert first in captions(at)  # the walked channel, large
    assert "Walked from" in texts(at.markdown) and all(k.startswith("walk.in.blocks.5.1:") for k in _walk_buttons(at))

    # The link reopens the walk; both circuits come from the store (no measuring).
    monkeypatch.setattr(analysis, "circuit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("measured")))
    circuits._measure.clear()
    again = open_app({**TWO_BY_TWO, "tile": "blocks.5:3", "walk": first})
    assert "Walked from" in texts(again.markdown) and _walk_buttons(again) == _walk_buttons(at)


def test_a_bad_walk_in_the_link_says_why_and_shows_the_tile(warm_cache):
    at = open_app({**TWO_BY_TWO, "tile": "blocks.5:3", "walk": "blocks.99:1"})
    assert "blocks.99" in texts(at.error)
    assert "Built from" in texts(at.markdown) and "Walked from" not in texts(at.markdown)
