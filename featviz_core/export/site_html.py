"""HTML pieces of the static atlas (export/site.py): pure functions from values to strings.

Every name that reaches a page (model, layer, anything from a model file) goes through `esc`; every
link is relative and names a file, so the pages work from file:// as from any static host.
"""
from __future__ import annotations

import html
from typing import Sequence
from urllib.parse import quote


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def href(path: str) -> str:
    """A relative link to a file of the site (path segments percent-encoded, then HTML-escaped)."""
    return esc(quote(path, safe="/.-_"))


def page(title: str, root: str, crumbs: Sequence[tuple[str, str | None]], body: str,
         rels: dict[str, str] | None = None) -> str:
    """A whole page: `root` leads back to the site's folder ('', '../', '../../'); crumbs are
    (text, link or None); rels become <link rel> elements (prev/next/up, used by atlas.js)."""
    links = "".join(f'<link rel="{esc(rel)}" href="{href(target)}">' for rel, target in (rels or {}).items())
    trail = '<span class="sep">›</span>'.join(
        f'<a href="{href(link)}">{esc(text)}</a>' if link else f"<span>{esc(text)}</span>" for text, link in crumbs)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><link rel=\"stylesheet\" href=\"{href(root + 'assets/atlas.css')}\">{links}"
            f"<script src=\"{href(root + 'assets/atlas.js')}\" defer></script></head>\n<body>"
            f"<header><nav class=\"crumbs\">{trail}</nav></header>\n<main>{body}</main>\n"
            "<footer>Rendered with featviz: pictures that maximally excite each channel.</footer></body></html>\n")


def z_text(z: float | None) -> str:
    return "—" if z is None else f"{z:.1f}"


def tile(image: str, link: str | None, label: str, z: float | None) -> str:
    """A thumbnail with its label and z; a link only where the page exists."""
    inner = (f'<img src="{href(image)}" alt="{esc(label)}" loading="lazy">'
             f'<div class="cap"><span>{esc(label)}</span><span class="z">z {esc(z_text(z))}</span></div>')
    if link is None:
        return f'<div class="tile">{inner}</div>'
    return f'<a class="tile" href="{href(link)}">{inner}</a>'


def grid(tiles: Sequence[str], extra_class: str = "") -> str:
    return f'<div class="grid {esc(extra_class)}">{"".join(tiles)}</div>'


def nav(items: Sequence[tuple[str, str | None]], current: str | None = None) -> str:
    """Navigation links; an item without a target is shown greyed out (no dangling links)."""
    parts = []
    for text, link in items:
        if link is None:
            parts.append(f'<span class="{"current" if text == current else ""}">{esc(text)}</span>')
        else:
            parts.append(f'<a href="{href(link)}">{esc(text)}</a>')
    return f'<nav class="nav">{"".join(parts)}</nav>'


def facts(rows: Sequence[tuple[str, str]]) -> str:
    return '<table class="facts">' + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows) \
        + "</table>"


CURVE_W, CURVE_H, PAD = 640, 240, 40


def curve_svg(curve: Sequence[float], label: str) -> str:
    """The activation curve (objective at every step) as inline SVG: a path, two axes, min/max labels."""
    values = [float(v) for v in curve] or [0.0]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    last = max(len(values) - 1, 1)
    x = lambda i: PAD + (CURVE_W - 1.5 * PAD) * i / last  # noqa: E731
    y = lambda v: CURVE_H - PAD - (CURVE_H - 1.6 * PAD) * (v - lo) / span  # noqa: E731
    path = "M" + " L".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    bottom, right = CURVE_H - PAD, CURVE_W - PAD / 2
    return (f'<svg class="curve" viewBox="0 0 {CURVE_W} {CURVE_H}" role="img" '
            f'aria-label="{esc("activation curve of " + label)}">'
            f'<line class="axis" x1="{PAD}" y1="{bottom}" x2="{right}" y2="{bottom}"/>'
            f'<line class="axis" x1="{PAD}" y1="{PAD / 2}" x2="{PAD}" y2="{bottom}"/>'
            f'<path class="line" d="{path}"/>'
            f'<text x="{PAD - 4}" y="{y(hi) + 4:.1f}" text-anchor="end">{esc(f"{hi:.3g}")}</text>'
            f'<text x="{PAD - 4}" y="{y(lo) + 4:.1f}" text-anchor="end">{esc(f"{lo:.3g}")}</text>'
            f'<text x="{PAD}" y="{bottom + 16}" text-anchor="middle">1</text>'
            f'<text x="{right}" y="{bottom + 16}" text-anchor="middle">{len(values)}</text>'
            f'<text x="{(PAD + right) / 2}" y="{CURVE_H - 6}" text-anchor="middle">step</text></svg>')
