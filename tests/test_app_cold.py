"""A shared link whose pictures are all cached opens without loading the model, or torch at all: its
pictures come from the store by key and its model from the stored card (featviz_ui/models.py), and
featviz_core's names are imported on first use (featviz_core/lazy.py). Each page's view runs in a
fresh process (tests/cold_views.py), first on an empty cache (it renders: torch is imported), then on
the cache that run filled (nothing to render: no torch, same pictures; the Layer similarity page: the
same CKA heatmap, read from the store)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

COLD_VIEWS = Path(__file__).resolve().parent / "cold_views.py"


def _open_views(cache: Path) -> dict:
    done = subprocess.run([sys.executable, str(COLD_VIEWS), str(cache)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.real_model
def test_cached_views_import_no_torch_and_show_the_same_pictures(tmp_path):
    rendered = _open_views(tmp_path / "cache")
    for page, seen in rendered.items():
        assert not seen["errors"], (page, seen["errors"])
        assert seen["captions"] or seen["charts"], page
    assert "torch" in rendered["compare"]["imported"]  # rendering needs it: the check can fail
    assert "torch" in rendered["similarity"]["imported"] and rendered["similarity"]["charts"]

    cached = _open_views(tmp_path / "cache")
    for page, seen in cached.items():
        assert not seen["errors"], (page, seen["errors"])
        assert seen["imported"] == [], f"the cached {page} view imported {seen['imported']}"
        assert seen["captions"] == rendered[page]["captions"], page
        assert seen["charts"] == rendered[page]["charts"], page
