"""featviz core: feature visualization by activation maximization, as a library.

    from featviz_core import load_model, render_channels, collect, RenderSettings, Store
    model = load_model("lite0")
    results = collect(render_channels(model, [("blocks.3", c) for c in range(8)], RenderSettings(), Store("cache")))

Each name is imported on first use (featviz_core/lazy.py): `from featviz_core import Store` imports
the store, not torch, so the dashboard serves a cached view without loading the model's machinery.
"""
from .lazy import lazy_names

__getattr__, __dir__, __all__ = lazy_names(__name__, {
    ".analysis.scan": "scan_folder",
    ".errors": "FeatvizError",
    ".inputs": "photo_digest read_photo sample_photo",
    ".jobs.dreams": "dream_channels",
    ".jobs.runner": "Progress collect render_channels",
    ".models": "DEFAULT_MODEL LoadedModel ModelParts list_models load_model pick_device register_model",
    ".optvis.objectives": "Objective",
    ".optvis.render": "RECIPES StepRecord",
    ".spec": "DEFAULT_METHOD METHODS DreamSettings RenderSettings RenderSpec Target check_objective_layers "
             "layers_for parse_channels parse_target",
    ".spec.layers": "LayerInfo resolve_targets spec_for",
    ".store": "ChannelResult Store",
})
