"""Every FEATVIZ_* environment variable and every host limit, in one place.

Whoever starts featviz decides these (the environment), never a visitor's link. Each is read when it
is asked for, never at import, so tests and launchers can change them; a bad value is one message that
names the variable and what it may be (`env_whole`, `env_gb`), never a traceback.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import FeatvizError

CACHE_ENV = "FEATVIZ_CACHE"  # the cache folder
CACHE_GB_ENV = "FEATVIZ_CACHE_GB"  # the cache's size: rendered pictures and uploads together
UPLOADS_GB_ENV = "FEATVIZ_UPLOADS_GB"  # the uploads' share of it
UPLOADS_MAX_FILES_ENV = "FEATVIZ_UPLOADS_MAX_FILES"
HOSTED_ENV = "FEATVIZ_HOSTED"  # a public server: tighter caps (host_limits)
MAX_SIZE_ENV, MAX_STEPS_ENV, MAX_CHANNELS_ENV = "FEATVIZ_MAX_SIZE", "FEATVIZ_MAX_STEPS", "FEATVIZ_MAX_CHANNELS"
MAX_QUEUED_ENV = "FEATVIZ_MAX_QUEUED"  # hosted: pictures one visitor may have queued at once
MAX_MEGAPIXELS_ENV = "FEATVIZ_MAX_MEGAPIXELS"  # the largest image featviz opens from outside
DREAM_MEGAPIXELS_ENV = "FEATVIZ_DREAM_MEGAPIXELS"  # the largest dream (its pixels, at the photo's shape)
WORKERS_ENV = "FEATVIZ_RENDER_WORKERS"
THREADS_ENV = "FEATVIZ_RENDER_THREADS"

DEFAULT_CACHE_DIR = "cache"
DEFAULT_CACHE_GB = 2.0
MAX_MEGAPIXELS = 40  # above any phone camera, far below what would exhaust memory; a host may lower it
SIZE_RANGE = (32, 1024)  # pixels per side of a picture, everywhere (spec.settings checks against it)
STEPS_RANGE = (1, 5000)
BATCH_RANGE = (1, 4096)  # pictures (or photos) per batch, everywhere
WORKERS_RANGE, THREADS_RANGE = (1, 64), (1, 256)
CHANNELS_RANGE = (1, 512)  # pictures per page view
QUEUED_RANGE = (1, 4096)
HOSTED_DEFAULTS = {"size": 224, "steps": 256, "channels": 32}
HOSTED_DREAM_MEGAPIXELS = 1  # a public server's dreams: up to 1 MP (a dream's memory is bounded by its tiles)
_TRUE = ("1", "true", "yes")


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


def env_whole(name: str, default, valid: tuple[int, int]):
    """The one parser of a whole-number variable: `default` when unset, else a number in `valid`."""
    text = _raw(name)
    if not text:
        return default
    if not text.isdigit() or not valid[0] <= int(text) <= valid[1]:
        shown = "" if default is None else f" (default {default})"
        raise FeatvizError(f"{name}={os.environ[name]!r} is not a whole number from {valid[0]} to {valid[1]}{shown}.")
    return int(text)


def env_gb(name: str, default: float) -> float:
    """A size in gigabytes: `default` when unset, else a positive number."""
    text = _raw(name)
    try:
        value = float(text) if text else default
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise FeatvizError(f"{name}={os.environ[name]!r} is not a positive number of gigabytes (e.g. 2 or 0.5).")
    return value


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") in _TRUE


def cache_dir() -> str:
    """FEATVIZ_CACHE, else ./cache."""
    return os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR


def cache_gb() -> float:
    return env_gb(CACHE_GB_ENV, DEFAULT_CACHE_GB)


def cache_gb_chosen() -> bool:
    """Whether the user chose the cache's size (an atlas then keeps to it)."""
    return bool(_raw(CACHE_GB_ENV))


def uploads_gb(default: float) -> float:
    return env_gb(UPLOADS_GB_ENV, default)


def uploads_max_files(default: int) -> int:
    return env_whole(UPLOADS_MAX_FILES_ENV, default, (1, 10**9))


def hosted() -> bool:
    return env_flag(HOSTED_ENV)


@dataclass(frozen=True)
class HostLimits:
    """Upper bounds per request; generous locally, tight when a public link could be shared widely."""

    size: int
    steps: int
    channels: int  # pictures rendered per page view
    hosted: bool


def host_limits() -> HostLimits:
    if not hosted():
        return HostLimits(size=SIZE_RANGE[1], steps=STEPS_RANGE[1], channels=CHANNELS_RANGE[1], hosted=False)
    return HostLimits(size=env_whole(MAX_SIZE_ENV, HOSTED_DEFAULTS["size"], SIZE_RANGE),
                      steps=env_whole(MAX_STEPS_ENV, HOSTED_DEFAULTS["steps"], STEPS_RANGE),
                      channels=env_whole(MAX_CHANNELS_ENV, HOSTED_DEFAULTS["channels"], CHANNELS_RANGE), hosted=True)


def max_queued(default: int) -> int:
    return env_whole(MAX_QUEUED_ENV, default, QUEUED_RANGE)


def max_pixels() -> int:
    """The pixel limit of every image from outside (uploaded photos, image folders)."""
    return env_whole(MAX_MEGAPIXELS_ENV, MAX_MEGAPIXELS, (1, MAX_MEGAPIXELS)) * 1_000_000


def dream_pixels() -> int:
    """The pixel limit of one dream: FEATVIZ_DREAM_MEGAPIXELS, by default 1 MP hosted, else the photo limit."""
    default = HOSTED_DREAM_MEGAPIXELS if hosted() else MAX_MEGAPIXELS
    return env_whole(DREAM_MEGAPIXELS_ENV, default, (1, MAX_MEGAPIXELS)) * 1_000_000


def render_workers() -> int | None:
    """FEATVIZ_RENDER_WORKERS, or None: the render service picks."""
    return env_whole(WORKERS_ENV, None, WORKERS_RANGE)


def render_threads() -> int | None:
    """FEATVIZ_RENDER_THREADS, or None: the render service picks."""
    return env_whole(THREADS_ENV, None, THREADS_RANGE)
