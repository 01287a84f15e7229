"""Models: the registry, the zoo of registered models, loading and the model card (layers, channels)."""
from ._registry import DEFAULT_MODEL, ModelParts, list_models, register_model
from .card import LayerInfo, LoadedModel
from .hooks import LOGITS, LayerTap
from .loading import load_model, pick_device
from .sanity import UnusableWeightsError

__all__ = ["DEFAULT_MODEL", "ModelParts", "list_models", "register_model", "LayerInfo", "LoadedModel", "LOGITS",
           "LayerTap", "load_model", "pick_device", "UnusableWeightsError"]
