"""A user's own model: `package.module:factory`, or an `nn.Module` handed to load_model in a notebook."""
from __future__ import annotations

import importlib

from torch import nn

from ..errors import FeatvizError
from ._registry import ModelParts
from .timm_models import config_of


def import_factory(spec: str) -> ModelParts:
    """`package.module:factory` -> ModelParts. The factory returns ModelParts, or
    (module, (mean, std)) or (module, (mean, std), input_size)."""
    mod_name, _, attr = spec.partition(":")
    form = "a callable taking no arguments, and must return ModelParts or (module, (mean, std)[, input_size])"
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise FeatvizError(f"Cannot import model factory {spec!r}: {exc}. "
                           "Use the form package.module:callable.") from exc
    try:
        made = factory()
    except Exception as exc:  # a class that needs arguments (torch.nn:Linear), not callable, or failing
        raise FeatvizError(f"Model factory {spec!r} failed when called ({type(exc).__name__}: {str(exc)[:200]}): "
                           f"it must be {form}.") from exc
    if isinstance(made, ModelParts):
        return made
    if isinstance(made, tuple) and len(made) in (2, 3) and isinstance(made[0], nn.Module):
        try:
            mean, std = made[1]
            return ModelParts(made[0], tuple(mean), tuple(std), int(made[2]) if len(made) == 3 else 224)
        except (TypeError, ValueError):
            pass
    raise FeatvizError(f"Model factory {spec!r} returned {type(made).__name__}: it must be {form}.")


def module_parts(module: nn.Module, mean=None, std=None, input_size=None) -> ModelParts:
    """An nn.Module in memory -> ModelParts: mean, std and input size as given, else from its timm
    pretrained config (a timm model), else ImageNet's and 224 px."""
    if not isinstance(module, nn.Module):
        raise FeatvizError(f"load_model takes a model name or an nn.Module, not {type(module).__name__}.")
    mean, std, size = config_of(module, mean, std, input_size)
    if len(mean) != len(std):
        raise FeatvizError(f"mean has {len(mean)} values and std {len(std)}: give one of each per input channel.")
    return ModelParts(module, mean, std, size)
