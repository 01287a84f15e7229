"""Models: the registry, the zoo of registered models, loading and the model card (layers, channels).

Names are imported on first use (featviz_core/lazy.py): listing the models imports no torch."""
from ..lazy import lazy_names
from . import zoo  # noqa: F401 (importing it fills the registry; it imports torch only to build a model)

__getattr__, __dir__, __all__ = lazy_names(__name__, {
    "._registry": "DEFAULT_MODEL ModelParts list_models register_model",
    ".card": "LoadedModel",
    ".hooks": "LayerTap",
    ".loading": "load_model pick_device",
    "..errors": "UnusableWeightsError",
    "..spec.layers": "LayerInfo",
    "..spec.targets": "LOGITS",
})
