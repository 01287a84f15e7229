"""Server-side settings: cache directory, hosted-mode caps, and custom models given on the command line.

Everything here is decided by whoever starts the server (environment, `streamlit run app.py -- --model
pkg.mod:factory`), never by a URL: a shared link can only pick among what the server offers.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from featviz_core import DEFAULT_MODEL, list_models
from featviz_core.store import default_cache_dir

# Architectures an uploaded state dict can be loaded into (lite0 also accepts one).
UPLOAD_ARCHITECTURES = ("lite0", "vgg16", "googlenet", "resnet50", "resnet18", "alexnet")


@dataclass(frozen=True)
class Caps:
    """Upper bounds per request; generous locally, tight when a public link could be shared widely."""

    size: int
    steps: int
    channels: int  # pictures rendered per page view
    hosted: bool


def caps() -> Caps:
    if os.environ.get("FEATVIZ_HOSTED", "") in ("1", "true", "yes"):
        return Caps(size=int(os.environ.get("FEATVIZ_MAX_SIZE", 224)), steps=int(os.environ.get("FEATVIZ_MAX_STEPS", 256)),
                    channels=int(os.environ.get("FEATVIZ_MAX_CHANNELS", 32)), hosted=True)
    return Caps(size=1024, steps=5000, channels=512, hosted=False)


def cache_dir() -> str:
    # Read at call time (not import time) so tests and launchers can point it elsewhere.
    return default_cache_dir()


def custom_models(argv: list[str] | None = None) -> list[str]:
    """`--model package.module:factory` flags after `streamlit run app.py --` (repeatable)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", action="append", default=[])
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return [m for m in known.model if ":" in m]


def model_choices() -> dict[str, str]:
    """Model name -> description, default first, then the registry, then server-given custom models."""
    registry = list_models()
    choices = {DEFAULT_MODEL: registry.get(DEFAULT_MODEL, "")}
    choices.update(registry)
    choices.update({spec: "custom model given on the server's command line" for spec in custom_models()})
    return choices
