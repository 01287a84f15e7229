"""Server-side settings: cache directory, hosted-mode caps, and custom models given on the command line.

Everything here is decided by whoever starts the server (environment, `streamlit run app.py -- --model
pkg.mod:factory`), never by a URL: a shared link can only pick among what the server offers.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from featviz_core import DEFAULT_MODEL, FeatvizError, list_models
from featviz_core.spec.settings import SIZE_RANGE, STEPS_RANGE
from featviz_core.store.disk import default_cache_dir

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
        return Caps(size=_whole("FEATVIZ_MAX_SIZE", 224, SIZE_RANGE), steps=_whole("FEATVIZ_MAX_STEPS", 256, STEPS_RANGE),
                    channels=_whole("FEATVIZ_MAX_CHANNELS", 32, (1, 512)), hosted=True)
    return Caps(size=SIZE_RANGE[1], steps=STEPS_RANGE[1], channels=512, hosted=False)


def _whole(name: str, default: int, valid: tuple[int, int]) -> int:
    """A host's setting: a whole number in `valid`, or a message naming the variable (never a traceback)."""
    text = os.environ.get(name, "")
    if not text:
        return default
    if not text.strip().isdigit() or not valid[0] <= int(text) <= valid[1]:
        raise FeatvizError(f"{name}={text!r} must be a whole number from {valid[0]} to {valid[1]} (default {default}).")
    return int(text)


def cache_dir() -> str:
    # Read at call time (not import time) so tests and launchers can point it elsewhere.
    return default_cache_dir()


def custom_models(argv: list[str] | None = None) -> list[str]:
    """`--model package.module:factory` flags after `streamlit run app.py --` (repeatable)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", action="append", default=[])
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return [m for m in known.model if ":" in m]


def exemplar_dirs(argv: list[str] | None = None) -> list[str]:
    """`--exemplars DIR` flags after `streamlit run app.py --` (repeatable): folders of exemplar scans."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--exemplars", action="append", default=[])
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return known.exemplars


def model_choices() -> dict[str, str]:
    """Model name -> description, default first, then the registry, then server-given custom models."""
    registry = list_models()
    choices = {DEFAULT_MODEL: registry.get(DEFAULT_MODEL, "")}
    choices.update(registry)
    choices.update({spec: "custom model given on the server's command line" for spec in custom_models()})
    return choices
