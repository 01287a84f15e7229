"""Where each file of the static atlas lives (relative to its folder), and the dashboard link of a channel."""
from __future__ import annotations

import hashlib
import re
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..errors import FeatvizError
from ..spec.settings import RenderSettings

DASHBOARD_VIEW = "evolution"  # the dashboard's one-channel page (featviz_ui/views.py)


def layer_slug(name: str) -> str:
    """A file-safe folder name for a layer: the name itself when it is safe, else a cleaned name plus a
    digest of the real one (so two layers never share a folder)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".")[:80]
    if safe == name:
        return safe
    return f"{safe or 'layer'}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def layer_page(slug: str, page: int) -> str:
    return f"layers/{slug}/page-{page}.html"


def channel_page(slug: str, channel: int) -> str:
    return f"layers/{slug}/channel-{channel}.html"


def picture_file(slug: str, channel: int) -> str:
    return f"layers/{slug}/{channel}.png"


def check_dashboard_url(url: str | None) -> str | None:
    """Only an http(s) address may become a link on every page (a javascript: one would run script)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FeatvizError(f"Dashboard URL {url!r} must be an http:// or https:// address, e.g. http://host:8501/.")
    return url


def dashboard_link(base: str, model_name: str, settings: RenderSettings, layer: str, channel: int) -> str:
    """The dashboard's share link for one channel on its Evolution page (the format of featviz_ui/share.py:
    <base>/<view>?<bound widget keys>), with the settings that differ from the defaults."""
    params = [("model", model_name), ("layer", layer), ("channel", str(channel)), *settings.to_query().items()]
    parts = urlsplit(base)
    path = parts.path.rstrip("/") + "/" + DASHBOARD_VIEW
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(params), ""))
