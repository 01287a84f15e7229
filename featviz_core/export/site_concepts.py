"""The atlas's concepts (`featviz atlas --concepts K`): a page per layer, layers/<layer>/concepts.html,
of the K concepts dictionary learning finds in its activations on natural photos (analysis/concepts.py),
each with its picture (the render loop climbing its direction with the atlas's settings, kept in the
store like every picture), the photo crops where it peaks, its importance and its top channels, linked
to their pages where the atlas has them; every channel page of the layer links to it.

Learned on ATLAS_PHOTOS (14 photos at 160 px, each whole and as 2 crops) and at most POSITIONS
activations, as the dashboard's Concepts page learns them; a layer without a spatial map (the
logits) gets no page, with a warning.
"""
from __future__ import annotations

import logging
import os
from typing import Mapping

from ..analysis.concepts import learn_concepts
from ..analysis.concepts_render import render_concepts
from ..analysis.concepts_where import concept_exemplars
from ..analysis.photoset import PhotoSet
from ..errors import FeatvizError
from ..models.loading import LoadedModel
from ..spec.settings import RenderSettings
from ..store.disk import Store, png_bytes
from . import site_html as h

log = logging.getLogger(__name__)

ATLAS_PHOTOS = PhotoSet(size=160, crops=2)
POSITIONS = 6000
EXEMPLARS = 3
PAGE = "concepts.html"  # in the layer's folder


def _write(out: str, slug: str, name: str, data: bytes) -> None:
    with open(os.path.join(out, "layers", slug, name), "wb") as f:
        f.write(data)


def _channels(concept: dict, present: set[int]) -> str:
    links = []
    for entry in concept["channels"]:
        channel, text = entry["channel"], f"{entry['channel']} ({entry['weight']:+.2f})"
        page = h.href(f"channel-{channel}.html")
        links.append(f'<a href="{page}">{h.esc(text)}</a>' if channel in present else h.esc(text))
    return ", ".join(links)


def _concept_html(doc: dict, c: int, crops: int, present: set[int]) -> str:
    concept = doc["concepts"][c]
    images = [f'<img class="picture" src="{h.href(f"concept-{c}.png")}" alt="concept {c}">']
    images += [f'<img src="{h.href(f"concept-{c}-ex{j}.png")}" alt="photo crop {j + 1} of concept {c}" '
               'loading="lazy">' for j in range(crops)]
    return (f'<section class="concept"><h2>concept {c}</h2><div class="grid">{"".join(images)}</div>'
            f'<p class="meta">{concept["importance"]:.0%} of what the layer\'s concepts reconstruct, over '
            f'{doc["photos"]["count"]} photos · top channels: {_channels(concept, present)}</p></section>')


def concepts_page(model_name: str, doc: dict, crops: list[int], present: set[int]) -> str:
    """The page of one layer's concepts (its pictures and crops beside it in the layer's folder)."""
    layer = doc["layer"]
    body = (f"<h1>{h.esc(layer)} · {len(doc['concepts'])} concepts</h1>"
            f'<div class="meta">{h.esc(model_name)} · {h.esc(doc["method"].upper())}, R² {doc["r2"]:.2f} over '
            f'{doc["positions"]:,} positions of {doc["photos"]["count"]} photos</div>'
            + "".join(_concept_html(doc, c, crops[c], present) for c in range(len(doc["concepts"]))))
    return h.page(f"{layer} concepts · {model_name}", "../../",
                  [("atlas", "../../index.html"), (layer, "page-1.html"), ("concepts", None)], body)


def write_layer(out: str, model: LoadedModel, settings: RenderSettings, layer: str, slug: str, store: Store | None,
                k: int, present: set[int]) -> None:
    """Learn, picture and find the layer's concepts, and write its page and files."""
    doc = learn_concepts(model, layer, k, "auto", settings.seed, ATLAS_PHOTOS, store, max_positions=POSITIONS)
    os.makedirs(os.path.join(out, "layers", slug), exist_ok=True)
    for event in render_concepts(model, doc, settings, store):
        for result in event.finished:
            _write(out, slug, f"concept-{result.channel}.png", result.png)
    found = concept_exemplars(model, doc, ATLAS_PHOTOS, EXEMPLARS, store)
    for c, row in enumerate(found):
        for j, exemplar in enumerate(row):
            _write(out, slug, f"concept-{c}-ex{j}.png", png_bytes(exemplar.crop))
    _write(out, slug, PAGE, concepts_page(model.name, doc, [len(row) for row in found], present).encode())


def add_concepts(out: str, model: LoadedModel, settings: RenderSettings, site: Mapping[str, list],
                 slugs: Mapping[str, str], store: Store | None, k: int) -> None:
    """Write each layer's concepts page and link it from the layer's channel pages (SiteChannel.concepts_html)."""
    for layer, items in site.items():
        try:
            write_layer(out, model, settings, layer, slugs[layer], store, k, {it.result.channel for it in items})
        except FeatvizError as exc:
            log.warning("no concepts page for %s: %s", layer, exc)
            continue
        link = (f'<h2>Concepts</h2><p><a class="concepts" href="{PAGE}">The {k} concepts of {h.esc(layer)}</a>: '
                "directions in its channels found by dictionary learning on natural photos.</p>")
        for item in items:
            item.concepts_html = link
