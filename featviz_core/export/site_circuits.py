"""The atlas's circuits: on each channel's page, "Built from" (the channels of the layer before that drive
it most) and "Feeds into" (the next layer's channels it drives most), as relative links to those
channels' pages where the atlas has them, else by number.

Measured with analysis.circuits.circuit (a batch job through the driver, kept in the store, so a second
export reads them back) on a small photo set (ATLAS_PHOTOS: 14 photos at 96 px, one batch), because an
atlas asks for one circuit per channel: `featviz atlas --no-circuits` skips them.
"""
from __future__ import annotations

import sys
from typing import Callable, Mapping

from ..analysis.circuits import circuit
from ..analysis.photoset import PhotoSet
from ..errors import FeatvizError
from ..models.loading import LoadedModel
from ..store.disk import Store
from . import site_html as h

ATLAS_PHOTOS = PhotoSet(size=96, crops=0)
TOP = 5


def _links(layer: str | None, entries: list[dict], here: str, slugs: Mapping[str, str],
           present: Callable[[str, int], bool]) -> str:
    items = []
    for e in entries[:TOP]:
        text = f"{layer}:{e['channel']} ({e['sign']}{abs(e['attribution']):.3g})"
        if layer in slugs and present(layer, e["channel"]):
            target = f"channel-{e['channel']}.html" if slugs[layer] == here else \
                f"../{slugs[layer]}/channel-{e['channel']}.html"
            items.append(f'<li><a class="circuit" href="{h.href(target)}">{h.esc(text)}</a></li>')
        else:
            items.append(f"<li>{h.esc(text)}</li>")
    return f'<ul class="circuit">{"".join(items)}</ul>' if items else '<p class="meta">None.</p>'


def circuit_html(doc: dict, here: str, slugs: Mapping[str, str], present: Callable[[str, int], bool]) -> str:
    """The two lists of one channel's page (in layers/<here>/), strongest |attribution| first."""
    built = _links(doc["from"], doc["inputs"], here, slugs, present)
    feeds = _links(doc["into"], doc["feeds_into"], here, slugs, present) if doc.get("into") else ""
    return (f'<h2>Built from</h2><p class="meta">The channels of {h.esc(doc["from"])} that drive it most on '
            f"natural photos (gradient × activation: + excites, − inhibits).</p>{built}"
            + (f'<h2>Feeds into</h2><p class="meta">The channels of {h.esc(doc["into"])} it drives most.</p>{feeds}'
               if feeds else ""))


def add_circuits(model: LoadedModel, site: Mapping[str, list], slugs: Mapping[str, str], store: Store | None) -> None:
    """Fill each SiteChannel's `circuit_html` (a layer with no earlier listed layer gets none)."""
    from tqdm import tqdm

    present_sets = {layer: {it.result.channel for it in items} for layer, items in site.items()}

    def present(layer: str, channel: int) -> bool:
        return channel in present_sets.get(layer, ())

    with tqdm(total=sum(len(items) for items in site.values()), unit="channel", desc="circuits", file=sys.stderr,
              dynamic_ncols=True) as bar:
        for layer, items in site.items():
            for item in items:
                try:
                    doc = circuit(model, layer, item.result.channel, photos=ATLAS_PHOTOS, store=store, top=TOP)
                except FeatvizError:  # the first listed layer: nothing feeds it
                    bar.update(len(items))
                    break
                item.circuit_html = circuit_html(doc, slugs[layer], slugs, present)
                bar.update()
