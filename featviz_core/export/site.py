"""Static atlas: rendered channels as a folder of HTML pages that any static host (or file://) serves.

    out/index.html                          the model, its settings, each layer with a few channels
    out/layers/<layer>/page-<n>.html        every channel of a layer, PER_PAGE to a page
    out/layers/<layer>/channel-<c>.html     one channel: the picture large, its activation curve (inline
                                            SVG), self-check z and rank, neighbours, prev/next, and a link
                                            that opens it in the dashboard when a base URL is given
    out/layers/<layer>/concepts.html        with `concepts`: the layer's concepts, linked from its channels
                                            (site_concepts.py)
    out/layers/<layer>/<c>.png, out/assets/ the pictures; one stylesheet, one small script
Links are relative and name files, nothing is fetched from elsewhere, and every name is escaped.

Neighbours: the channels of the same layer that a channel's own picture excites most after itself
(the self-check's z of every channel on the picture, `selfcheck.neighbours`): what else in the layer
responds to the same pattern. Only channels in the atlas are linked; others are listed by number.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..analysis import selfcheck
from ..jobs.pictures import spec_for
from ..models.loading import LoadedModel
from ..spec.settings import RenderSettings
from ..spec.targets import Target
from ..store.disk import ChannelResult, Store
from . import site_html as h
from .site_circuits import add_circuits
from .site_concepts import add_concepts
from .site_paths import (  # noqa: F401 (DASHBOARD_VIEW: a name of this module's too)
    DASHBOARD_VIEW,
    channel_page,
    check_dashboard_url,
    dashboard_link,
    layer_page,
    layer_slug,
    picture_file,
)

log = logging.getLogger(__name__)

PER_PAGE = 256  # channels on a layer page (Lite0's widest listed layer has 1280)
PREVIEW = 8  # channels per layer on the index
NEIGHBOURS = 6
ASSETS = os.path.join(os.path.dirname(__file__), "site_assets")


@dataclass
class SiteChannel:
    result: ChannelResult
    z: float | None = None
    rank: int | None = None
    neighbours: list[int] = field(default_factory=list)
    circuit_html: str = ""  # Built from / Feeds into (site_circuits.py)
    concepts_html: str = ""  # the link to its layer's concepts page (site_concepts.py)


def _settings_text(settings: RenderSettings) -> str:
    return (f"{settings.method}, {settings.size} px, {settings.steps} steps, seed {settings.seed}, "
            f"init {settings.init}, objective {settings.objective}")


def _tile(slug: str, item: SiteChannel, root: str) -> str:
    c = item.result.channel
    return h.tile(root + picture_file(slug, c), root + channel_page(slug, c), str(c), item.z)


def _channel_body(model: dict, settings: RenderSettings, layer: str, slug: str, item: SiteChannel,
                  exported: dict[int, SiteChannel], nav: str, dashboard: str | None) -> str:
    r, root = item.result, "../../"
    of = model.get("layers", {}).get(layer)
    rows = [("self-check z", h.z_text(item.z)),
            ("rank in its layer", "—" if item.rank is None else f"{item.rank}" + (f" of {of}" if of else "")),
            ("final activation", f"{r.curve[-1]:.4g}" if r.curve else "—"),
            ("settings", _settings_text(settings))]
    dead = '<p class="dead">Dead: this channel never rose above zero.</p>' if r.dead else ""
    near = [_tile(slug, exported[c], root) for c in item.neighbours if c in exported]
    absent = [str(c) for c in item.neighbours if c not in exported]
    near_html = (h.grid(near, "neighbours") if near else "") + (
        f'<p class="meta">Not in this atlas: {h.esc(", ".join(absent))}</p>' if absent else "")
    open_link = f'<p><a href="{h.esc(dashboard)}">Open in the dashboard</a></p>' if dashboard else ""
    unknown = "None." if item.z is not None else "Not known: the atlas was written without the self-check."
    no_near = f'<p class="meta">{unknown}</p>'
    return (f"<h1>{h.esc(layer)} · channel {r.channel}</h1>"
            f'<div class="meta">{h.esc(model["name"])}</div>{nav}<div class="channel">'
            f'<img class="picture" src="{h.href(str(r.channel) + ".png")}" alt="{h.esc(r.label)}">'
            f"<div>{h.facts(rows)}{dead}<h2>Activation while rendering</h2>{h.curve_svg(r.curve, r.label)}"
            f"<h2>Neighbours</h2><p class=\"meta\">The channels this picture excites most after its own.</p>"
            f"{near_html or no_near}{item.circuit_html}{item.concepts_html}{open_link}</div></div>")


def _write(out: str, rel: str, text: str) -> None:
    path = os.path.join(out, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _write_layer(out: str, model: dict, settings: RenderSettings, layer: str, slug: str,
                 items: list[SiteChannel], base: str | None) -> None:
    exported = {it.result.channel: it for it in items}
    pages = max(1, -(-len(items) // PER_PAGE))
    home = ("atlas", "../../index.html")
    os.makedirs(os.path.join(out, "layers", slug), exist_ok=True)
    for i, item in enumerate(items):
        c = item.result.channel
        with open(os.path.join(out, *picture_file(slug, c).split("/")), "wb") as f:
            f.write(item.result.png)
        prev = f"channel-{items[i - 1].result.channel}.html" if i > 0 else None
        nxt = f"channel-{items[i + 1].result.channel}.html" if i + 1 < len(items) else None
        up = f"page-{i // PER_PAGE + 1}.html"
        nav = h.nav([("← previous", prev), (f"{layer}", up), ("next →", nxt)])
        link = dashboard_link(base, model["name"], settings, layer, c) if base else None
        body = _channel_body(model, settings, layer, slug, item, exported, nav, link)
        rels = {k: v for k, v in (("prev", prev), ("next", nxt), ("up", up)) if v}
        _write(out, channel_page(slug, c), h.page(f"{layer}:{c} · {model['name']}", "../../",
                                                   [home, (layer, up), (f"channel {c}", None)], body, rels))
    for p in range(1, pages + 1):
        chunk = items[(p - 1) * PER_PAGE:p * PER_PAGE]
        links = [(str(n), None if n == p else f"page-{n}.html") for n in range(1, pages + 1)]
        pager = h.nav(links, str(p)) if pages > 1 else ""
        body = (f"<h1>{h.esc(layer)}</h1>"
                f"<div class=\"meta\">{len(items)} channels in this atlas · page {p} of {pages}</div>"
                f"{pager}{h.grid([_tile(slug, it, '../../') for it in chunk])}{pager}")
        rels = {k: v for k, v in (("prev", f"page-{p - 1}.html" if p > 1 else None),
                                  ("next", f"page-{p + 1}.html" if p < pages else None),
                                  ("up", "../../index.html")) if v}
        page = h.page(f"{layer} · {model['name']}", "../../", [home, (layer, None)], body, rels)
        _write(out, layer_page(slug, p), page)


def _unique_slugs(layers: Sequence[str]) -> dict[str, str]:
    slugs: dict[str, str] = {}
    for layer in layers:
        slug = layer_slug(layer)
        if slug in slugs.values():  # a safe name that happens to equal another layer's cleaned one
            slug = f"{slug}-{hashlib.sha256(layer.encode()).hexdigest()[:10]}"
        slugs[layer] = slug
    return slugs


def write_site(out: str, model: dict, settings: RenderSettings, layers: dict[str, list[SiteChannel]],
               dashboard_url: str | None = None) -> str:
    """Write the atlas of `layers` (layer -> its channels, shallow to deep) under `out`; returns index.html's path.

    `model`: {"name", "weights_digest", optional "layers": {layer: channel count}} (as manifests hold it)."""
    base = check_dashboard_url(dashboard_url)
    slugs = _unique_slugs(list(layers))
    os.makedirs(os.path.join(out, "assets"), exist_ok=True)
    for name in ("atlas.css", "atlas.js"):
        shutil.copyfile(os.path.join(ASSETS, name), os.path.join(out, "assets", name))
    sections = []
    for layer, items in layers.items():
        items = sorted({it.result.channel: it for it in items}.values(), key=lambda it: it.result.channel)
        _write_layer(out, model, settings, layer, slugs[layer], items, base)
        total = model.get("layers", {}).get(layer)
        count = f"{len(items)} channels" + (f" of {total}" if total else "")
        first = h.href(layer_page(slugs[layer], 1))
        preview = h.grid([_tile(slugs[layer], it, "") for it in items[:PREVIEW]])
        sections.append(f'<section class="layer"><h2><a href="{first}">{h.esc(layer)}</a></h2>'
                        f'<div class="meta">{h.esc(count)}</div>{preview}'
                        f'<p><a href="{first}">All {len(items)} channels →</a></p></section>')
    intro = (f"<h1>{h.esc(model['name'])}</h1><div class=\"meta\">weights {h.esc(model.get('weights_digest', '?'))} · "
             f"{h.esc(_settings_text(settings))} · {len(layers)} layers</div>")
    index = h.page(f"{model['name']} · featviz atlas", "", [("atlas", None)], intro + "".join(sections))
    _write(out, "index.html", index)
    return os.path.join(out, "index.html")


def describe(model: LoadedModel) -> dict:
    return {"name": model.name, "weights_digest": model.digest, "device": str(model.device),
            "layers": {name: info.channels for name, info in model.layers.items()}}


def _without_frames(result: ChannelResult | None) -> ChannelResult | None:
    """The site shows the final picture and curve only: dropping the evolution frames keeps a whole
    model's atlas in memory (Lite0: 3,120 pictures, ~3.9 GB with frames, ~0.4 GB without)."""
    if result is not None:
        result.snapshots = [(result.snapshots[-1][0], result.png)] if result.snapshots else []
    return result


def export_from_store(out: str, model: LoadedModel, settings: RenderSettings,
                      layers: Mapping[str, Sequence[int]] | Sequence[str], store: Store,
                      dashboard_url: str | None = None, check: bool = True, circuits: bool = True,
                      concepts: int = 0) -> str:
    """The atlas of what `store` holds for these layers (names or aliases -> channels; a bare list of
    layers means every channel), rendered with `settings`; each picture self-checked (cached in the
    store) with its circuit (site_circuits.py); with `concepts`, a page of that many concepts per layer
    (site_concepts.py). Channels not in the store are left out. Returns index.html."""
    from tqdm import tqdm

    wanted = layers if isinstance(layers, Mapping) else {name: None for name in layers}
    found: dict[str, list[ChannelResult | None]] = {}
    for name, channels in wanted.items():
        layer = model.resolve_layer(name)
        channels = range(model.info(layer).channels) if channels is None else channels
        keys = [spec_for(model, Target(layer, int(c)), settings).key() for c in channels]
        found[layer] = [_without_frames(store.get(key)) for key in keys]
    missing = sum(r is None for rs in found.values() for r in rs)
    site: dict[str, list[SiteChannel]] = {}
    with tqdm(total=sum(len(rs) for rs in found.values()) - missing, unit="picture", desc="self-check",
              file=sys.stderr, dynamic_ncols=True, disable=not check) as bar:
        for layer, results in found.items():
            results = [r for r in results if r is not None]
            scores = selfcheck.picture_scores(model, layer, results, store, bar.update) if check \
                else [None] * len(results)
            site[layer] = [SiteChannel(r, s.z, s.rank, selfcheck.neighbours(s, NEIGHBOURS)) if s else SiteChannel(r)
                           for r, s in zip(results, scores)]
    if missing:
        log.warning("%d requested channels are not rendered yet (not in the cache): the atlas leaves them out", missing)
    if circuits:
        add_circuits(model, site, _unique_slugs(list(site)), store)
    if concepts:
        add_concepts(out, model, settings, site, _unique_slugs(list(site)), store, concepts)
    return write_site(out, describe(model), settings, site, dashboard_url)
