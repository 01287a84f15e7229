"""Server-side settings: cache directory, hosted-mode caps, and custom models given on the command line.

Everything here is decided by whoever starts the server (environment, `streamlit run app.py -- --model
pkg.mod:factory`), never by a URL: a shared link can only pick among what the server offers.
"""
from __future__ import annotations

import argparse
import sys

from featviz_core import DEFAULT_MODEL, list_models
from featviz_core.config import HostLimits, host_limits, max_queued  # noqa: F401 (max_queued: for the pages)
from featviz_core.store import default_cache_dir

# Architectures an uploaded state dict can be loaded into: every registered model (lite0 accepts one too).
UPLOAD_ARCHITECTURES = tuple(list_models())
Caps = HostLimits  # upper bounds per request; generous locally, tight when a public link could be shared widely


def caps() -> HostLimits:
    """The host's limits (featviz_core.config reads FEATVIZ_HOSTED and FEATVIZ_MAX_*)."""
    return host_limits()


def cache_dir() -> str:
    # Read at call time (not import time) so tests and launchers can point it elsewhere.
    return default_cache_dir()


def custom_models(argv: list[str] | None = None) -> list[str]:
    """`--model package.module:factory` flags after `streamlit run app.py --` (repeatable)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", action="append", default=[])
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return [m for m in known.model if ":" in m]


def _server_dirs(flag: str, argv: list[str] | None) -> list[str]:
    """Repeatable `--FLAG DIR` after `streamlit run app.py --`: folders only the server's owner names."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(f"--{flag}", action="append", default=[])
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return getattr(known, flag)


def exemplar_dirs(argv: list[str] | None = None) -> list[str]:
    """`--exemplars DIR` flags: folders of exemplar scans."""
    return _server_dirs("exemplars", argv)


def photo_dirs(argv: list[str] | None = None) -> list[str]:
    """`--photos DIR` flags: folders of photos the Layer similarity page may measure on."""
    return _server_dirs("photos", argv)


def model_choices() -> dict[str, str]:
    """Model name -> description, default first, then the registry, then server-given custom models."""
    registry = list_models()
    choices = {DEFAULT_MODEL: registry.get(DEFAULT_MODEL, "")}
    choices.update(registry)
    choices.update({spec: "custom model given on the server's command line" for spec in custom_models()})
    return choices
