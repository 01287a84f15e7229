"""`timm:NAME`: any timm model by name, with timm's pretrained weights (downloaded once, when online) or
a local state dict (`--weights FILE`, offline); mean, std and input size from its pretrained config."""
from __future__ import annotations

import difflib

import torch
from torch import nn

from ..errors import FeatvizError
from ._registry import IMAGENET_MEAN, IMAGENET_STD, ModelParts
from .hooks import LOGITS
from .tokens import adapt_tokens, is_token_model
from .weights import apply_state_dict, load_state_dict_file

PREFIX = "timm:"


def _create(arch: str, pretrained: bool) -> nn.Module:
    import timm

    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
        hint = f" Did you mean {', '.join(PREFIX + c for c in close)}?" if close else ""
        raise FeatvizError(f"Unknown timm model {arch!r}.{hint} timm.list_models() lists them all.")
    try:
        return timm.create_model(arch, pretrained=pretrained)
    except FeatvizError:
        raise
    except Exception as exc:  # offline, proxy, corrupt download, a model without pretrained weights
        if not pretrained:
            raise FeatvizError(f"timm could not build {arch!r} ({type(exc).__name__}: {str(exc)[:160]}).") from exc
        raise FeatvizError(
            f"Could not get timm's pretrained weights for {arch!r} ({type(exc).__name__}: {str(exc)[:160]}). "
            f"Connect to the internet once (they are cached under {torch.hub.get_dir()}), or pass a local state dict "
            "with --weights FILE (saved with torch.save(timm.create_model(NAME).state_dict(), FILE)). "
            "The offline default model is 'lite0'.") from exc


def cnn_layers(module: nn.Module) -> list[str] | None:
    """A timm CNN's feature stages (`feature_info`) and, for a stage that is a sequence, its blocks
    first; None (every module with a 4-D output) for a model without feature_info."""
    info = getattr(module, "feature_info", None)
    if not info:
        return None
    modules, names = dict(module.named_modules()), []
    for entry in info:
        stage = entry.get("module", "") if isinstance(entry, dict) else ""
        if stage not in modules:
            continue
        if isinstance(modules[stage], nn.Sequential) and len(modules[stage]) > 1:
            names += [f"{stage}.{j}" for j in range(len(modules[stage]) - 1)]
        names.append(stage)
    return list(dict.fromkeys(names)) + [LOGITS] if names else None


def config_of(module: nn.Module, mean=None, std=None, input_size=None) -> tuple[tuple, tuple, int]:
    """Mean, std and input size: the ones given, else the module's timm pretrained config, else ImageNet's."""
    cfg = getattr(module, "pretrained_cfg", None) or {}
    size = input_size or (cfg.get("input_size") or (3, 224, 224))[-1]
    return (tuple(mean or cfg.get("mean") or IMAGENET_MEAN), tuple(std or cfg.get("std") or IMAGENET_STD), int(size))


def timm_parts(spec: str, weights: str | None) -> ModelParts:
    """`timm:NAME` -> ModelParts."""
    arch = spec[len(PREFIX):]
    module = _create(arch, pretrained=not weights)
    if weights:
        apply_state_dict(module, load_state_dict_file(weights, module), spec)
    mean, std, size = config_of(module)
    names = adapt_tokens(module, None) if is_token_model(module) else cnn_layers(module)
    return ModelParts(module, mean, std, size, names)
