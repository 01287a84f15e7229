"""Opens each page's view once under AppTest in this (fresh) process, and says what it showed and
which of featviz's heavy machinery it imported. Run by tests/test_app_cold.py as

    python tests/cold_views.py CACHE_DIR      # prints one JSON line: {page: {...}, ...}

Cached views must show their pictures (or charts) without importing torch (nor loading a model); the same
views on an empty cache render, and so import it."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST = {"size": "64", "steps": "8"}
VIEWS = {  # page: its link's query (tiny pictures, as tests/app_fixtures.py's FAST)
    "compare": {**FAST, "layers": ["blocks.1", "blocks.5"], "ch.blocks.1": "0-1", "ch.blocks.5": "3,5"},
    "curves": {**FAST, "layers": ["blocks.1", "blocks.5"], "ch.blocks.1": "0-1", "ch.blocks.5": "3,5"},
    "gallery": {**FAST, "layer": "blocks.1", "per": "16", "page": "2"},
    "evolution": {**FAST, "layer": "blocks.5", "channel": "3"},
    "dream": {"size": "64", "dsteps": "4", "octaves": "1"},
    "similarity": {"cka": "blocks.1,blocks.5"},  # its heatmap in "charts"
    "concepts": {**FAST, "layers": ["blocks.1", "blocks.5"], "k": "4"},
}
HEAVY = ("torch", "timm", "torchvision", "featviz_core.models.loading", "featviz_core.serving.service")


def open_view(page: str, query: dict) -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    for key, value in {**query, "view": page}.items():
        at.query_params[key] = value
    at.run()
    captions = [img.proto.imgs[0].caption for img in at.get("image") if img.proto.imgs[0].caption]
    charts = [json.loads(chart.proto.spec)["data"][0]["z"] for chart in at.get("plotly_chart")]
    errors = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
    return {"captions": captions, "charts": charts, "errors": errors,
            "imported": [name for name in HEAVY if name in sys.modules]}


def fewer_concepts() -> None:
    """The Concepts page learns on fewer positions and draws a shorter R² curve: seconds per layer."""
    from featviz_ui import concept_data

    concept_data.POSITIONS, concept_data.KS = 1500, (1, 2, 4)


def main() -> None:
    os.environ["FEATVIZ_CACHE"] = sys.argv[1]
    os.environ.pop("FEATVIZ_HOSTED", None)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    fewer_concepts()
    print(json.dumps({page: open_view(page, query) for page, query in VIEWS.items()}))


if __name__ == "__main__":
    main()
