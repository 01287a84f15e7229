"""Hostile links, opened as a visitor would (AppTest over the warm cache, so nothing renders): no
exception, a note for every value the link asked for that is not used as given, nothing from the link
shown as markdown (no link, image, HTML or emphasis), and every uploaded file still on disk after."""
from __future__ import annotations

import re

import pytest
import torch
from streamlit.testing.v1 import AppTest

from featviz_ui.models import current_uploads
from featviz_ui.views import LANDING, VIEW_PARAM
from tests.app_fixtures import APP, FAST, TWO_BY_TWO, texts, warm_cache, warm_cache_dir  # noqa: F401

LINK = "[evil](http://evil.example)"
IMAGE = "![evil](http://evil.example/x.png)"
HTML = "<img src=x onerror=alert('evil')>"
BOLD = "**evil**"
CODE = "`evil`"
AUTOLINK = "http://evil.example"
WWW = "www.evil.example"
DIRECTIVE = ":red[evil]"
HEADING = "1\n# evil"
MATHS = "$evil$"
MISFIT, GARBAGE = "misfit", "garbage"  # replaced by the ids of two uploads made before each link

EVOLUTION = {**FAST, "layer": "blocks.1", "channel": "0"}
GALLERY = {**FAST, "layer": "blocks.1"}

# (page, the link's query, what the note above the page (or in place) must say; None: nothing to repair)
LINKS = [
    ("compare", {"seed": "-3"}, "seed -3 is outside 0–2147483647: using 0"),
    ("compare", {"seed": "NaN"}, "seed 'NaN' is not a whole number: using the default, 0"),
    ("compare", {"seed": "1e3"}, "seed '1e3' is not a whole number"),
    ("compare", {"seed": HEADING}, "is not a whole number: using the default, 0"),
    ("compare", {"size": "64.5"}, "image size '64.5' is not a whole number: using the default, 64"),
    ("compare", {"size": "4096"},  # the core's own message (spec.check_whole), then what the link gets
     "image size: Size 4096 is out of range: choose a whole number from 32 to 1024. "
     "Using 64 (this public server's cap)"),
    ("compare", {"size": MATHS}, "image size '$evil$' is not a whole number"),
    ("compare", {"size": ["64", "128"]}, "gives size 2 times ('64', '128'): using the last, '128'"),
    ("compare", {"steps": ["16", "8"]}, "gives steps 2 times"),
    ("compare", {"steps": "-1"}, "step count: Steps -1 is out of range: choose a whole number from 1 to 5000. Using 1"),
    ("compare", {"steps": "4000"}, "step count 4000 is outside 1–8 (this public server's cap): using 8"),
    ("compare", {"method": ["maco", "fourier"]}, "gives method 2 times"),
    ("compare", {"method": LINK}, "method '[evil](http://evil.example)', which is not offered here; showing fourier"),
    ("compare", {"model": LINK}, "model '[evil](http://evil.example)', which is not offered here; showing lite0"),
    ("compare", {"model": IMAGE}, "Valid models: lite0"),
    ("compare", {"init": BOLD}, "starting image '**evil**', which is not offered here"),
    ("compare", {"objective": HTML}, "Valid objectives: channel"),
    ("compare", {"weights": "zzzz"}, "weights id in the link is malformed"),
    ("compare", {"weights": "../../etc/passwd"}, "weights id in the link is malformed"),
    ("compare", {"weights": LINK}, "weights id in the link is malformed"),
    ("compare", {"weights": "0123456789abcdef0123"}, "0123456789abcdef0123 is not on this server"),
    ("compare", {"weights": MISFIT}, "do not fit lite0"),
    ("compare", {"weights": GARBAGE}, "not a readable PyTorch state dict"),
    ("compare", {"weights": [MISFIT, "zzzz"]}, "gives weights 2 times"),
    ("compare", {"ch.blocks.1": LINK}, "Cannot read '[evil](http://evil.example)' in the channel list"),
    ("compare", {"ch.blocks.1": CODE}, "Cannot read '`evil`'"),
    ("compare", {"ch.blocks.1": "0-99999999999"}, "Channel 99999999999 is out of range of layer 'blocks.1'"),
    ("compare", {"ch.blocks.1": ["0-1", "0"]}, "gives ch.blocks.1 2 times"),
    ("compare", {"layers": ["blocks.1", WWW]}, "Unknown layer 'www.evil.example'"),
    ("compare", {"layers": [DIRECTIVE]}, "Unknown layer ':red[evil]'"),
    ("compare", {"layers": ["blocks.1", "blocks.5.0.bn9"]}, "Did you mean 'blocks.5.0.bn3', 'blocks.5.0.bn2'"),
    ("compare", {"layers": ["blocks.1", "blocks.5.0." + LINK]}, "`featviz layers --all` lists them"),
    ("compare", {"tile": LINK}, "tile '[evil](http://evil.example)', which is not offered here"),
    ("compare", {"view": LINK}, "view '[evil](http://evil.example)', which is no page here"),
    ("compare", {"view": ["gallery", "compare"]}, "gives view 2 times"),
    ("compare", {"unknown": LINK}, None),
    ("curves", {"y": LINK},
     "y-axis scale '[evil](http://evil.example)', which is not offered here; showing activation"),
    ("curves", {"y": ["z-score", "activation"]}, "gives y 2 times"),
    ("evolution", {"channel": "-1"}, "channel -1 is outside 0–23 (layer blocks.1 has 24): using 0"),
    ("evolution", {"channel": AUTOLINK}, "channel 'http://evil.example' is not a whole number"),
    ("evolution", {"channel": "1.5"}, "channel '1.5' is not a whole number: using the default, 0"),
    ("evolution", {"step": "77"}, "iteration '77', which is not offered here; showing 8"),
    ("evolution", {"step": BOLD}, "Valid iterations: 1, 2"),
    ("evolution", {"layer": LINK}, "Unknown layer '[evil](http://evil.example)'"),
    ("gallery", {"per": "17"}, "page size '17', which is not offered here; showing 16"),
    ("gallery", {"per": IMAGE}, "Valid page sizes: 16, 32, 64"),
    ("gallery", {"per": "16"}, "at most 2 pictures per view: 2 per page instead of 16"),
    ("gallery", {"page": "0"}, "page 0 is outside 1–12 (pages of 2 channels of blocks.1): using 1"),
    ("gallery", {"page": "-4"}, "page -4 is outside"),
    ("gallery", {"page": "NaN"}, "page 'NaN' is not a whole number: using the default, 1"),
    ("gallery", {"page": ["2", "1"]}, "gives page 2 times"),
    ("gallery", {"layer": ["blocks.5", "blocks.1"]}, "gives layer 2 times"),
    ("dream", {"accent": "NaN"}, "accentuation strength 'NaN' is not a number: using the default, 0"),
    ("dream", {"accent": "150"}, "accentuation strength: Accentuation strength 150.0 is out of range: 0 (off) to "
                                 "100. Using 100"),
    ("dream", {"accent": LINK}, "accentuation strength '[evil](http://evil.example)' is not a number"),
    ("dream", {"octaves": "9"}, "octave count 9 is outside 1–8: using 8"),
    ("dream", {"dkind": "logit", "cls": "99999"}, "class 99999 is outside 0–999 (lite0 has 1000 classes): using 999"),
    ("dream", {"dkind": "logit", "cls": "NaN"}, "class 'NaN' is not a whole number: using the default, 0"),
    ("dream", {"dkind": "channel", "dlayer": "blocks.1", "ch": "-1"},
     "channel -1 is outside 0–23 (layer blocks.1 has 24): using 0"),
    ("dream", {"dkind": "channel", "dlayer": "<script>"},
     "layer to dream with '<script>', which is not offered here; showing blocks.5"),
    ("dream", {"dkind": "channel", "dlayer": "logits"}, "Unknown layer to dream with 'logits'"),
]
DREAM = {"size": "48", "dsteps": "2", "octaves": "1", "photo": "chelsea", "layers": "blocks.1"}
BASE = {"compare": TWO_BY_TWO, "curves": TWO_BY_TWO, "evolution": EVOLUTION, "gallery": GALLERY, "dream": DREAM}
# Unescaped markdown that text from a link could form: links, images, HTML, emphasis, code, autolinks.
MARKDOWN = re.compile(r"(?<!\\)[\[\]()<>*_`!$#]|https?://|www\.")


@pytest.fixture
def hosted(monkeypatch):
    """A public server whose caps make every repaired link land on a picture the warm cache holds."""
    for name, value in {"FEATVIZ_HOSTED": "1", "FEATVIZ_MAX_SIZE": "64", "FEATVIZ_MAX_STEPS": "8",
                        "FEATVIZ_MAX_CHANNELS": "4"}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def _uploads(tmp_path) -> dict[str, str]:
    """Two uploads of other visitors: weights of another network, and a file that is no state dict."""
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    uploads = current_uploads()
    return {MISFIT: uploads.put((tmp_path / "other.pt").read_bytes(), "weights"),
            GARBAGE: uploads.put(b"not weights at all", "weights")}


def _markdown_fields(node):
    """(text, where) for every field of every element that Streamlit renders as markdown."""
    children = getattr(node, "children", None)
    if children is not None:
        for child in children.values():
            yield from _markdown_fields(child)
        return
    proto = getattr(node, "proto", None)
    for field in ("body", "label", "help", "placeholder"):
        if proto is not None and field in type(proto).DESCRIPTOR.fields_by_name and getattr(proto, field):
            yield getattr(proto, field), f"{type(node).__name__}.{field}"


@pytest.mark.parametrize("page, query, expected", LINKS, ids=[f"{p}:{q}" for p, q, _ in LINKS])
def test_a_hostile_link_is_repaired_out_loud(warm_cache, hosted, tmp_path, page, query, expected):
    if page == "gallery":
        hosted.setenv("FEATVIZ_MAX_CHANNELS", "2")  # a page of blocks.1:0-1, in the warm cache
    ids = _uploads(tmp_path)
    files = [f for _, _, f in current_uploads().files()]
    query = {k: ([ids.get(x, x) for x in v] if isinstance(v, list) else ids.get(v, v)) for k, v in query.items()}
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in {**BASE[page], **query, **({VIEW_PARAM: page} if page != LANDING else {})}.items():
        at.query_params[key] = value
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    said = texts(at.error) + texts(at.warning) + texts(at.info)
    if expected is not None:
        assert expected in said
    for text, where in _markdown_fields(at._tree):
        if "evil" in text:
            assert not MARKDOWN.search(text), f"markdown from the link in {where}: {text!r}"
        assert str(warm_cache) not in text and "/etc" not in text, f"a server path in {where}: {text!r}"
    assert set(files) <= {f for _, _, f in current_uploads().files()}  # every upload on disk survives
