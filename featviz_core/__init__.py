"""featviz core: feature visualization by activation maximization, as a library.

    from featviz_core import load_model, render_channels, collect, RenderSettings, Store
    model = load_model("lite0")
    results = collect(render_channels(model, [("blocks.3", c) for c in range(8)], RenderSettings(), Store("cache")))
"""
from .analysis.scan import scan_folder
from .errors import FeatvizError
from .inputs import photo_digest, read_photo, sample_photo
from .jobs.dreams import dream_channels
from .jobs.runner import Progress, collect, render_channels, resolve_targets, spec_for
from .models import (
    DEFAULT_MODEL,
    LayerInfo,
    LoadedModel,
    ModelParts,
    list_models,
    load_model,
    pick_device,
    register_model,
)
from .optvis.objectives import Objective
from .optvis.render import RECIPES, StepRecord
from .spec import (
    DEFAULT_METHOD,
    METHODS,
    DreamSettings,
    RenderSettings,
    RenderSpec,
    Target,
    check_objective_layers,
    layers_for,
    parse_channels,
    parse_target,
)
from .store import ChannelResult, Store

__all__ = [
    "FeatvizError", "DEFAULT_MODEL", "LayerInfo", "LoadedModel", "ModelParts", "list_models", "load_model",
    "pick_device", "register_model", "Objective", "Target", "check_objective_layers", "layers_for", "parse_channels",
    "parse_target", "RECIPES", "StepRecord",
    "Progress", "collect", "render_channels", "resolve_targets", "spec_for", "DEFAULT_METHOD", "METHODS",
    "RenderSettings", "RenderSpec", "ChannelResult", "Store",
    "DreamSettings", "dream_channels", "photo_digest", "read_photo", "sample_photo", "scan_folder",
]
