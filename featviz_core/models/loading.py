"""Model zoo: the one place that knows about timm, torchvision and weight files.

`load_model(name)` returns a `LoadedModel`: the frozen module on its device, its input normalization,
its natural input size, the layers worth visualizing (with channel counts and output sizes) and a
digest of its weights that identifies it in cache keys.
"""
from __future__ import annotations

import hashlib

import torch
from torch import nn

from ..errors import FeatvizError, unknown_choice
from . import zoo  # noqa: F401 (importing it fills the registry)
from ._registry import (  # noqa: F401
    DEFAULT_MODEL,
    IMAGENET_MEAN,
    IMAGENET_STD,
    REGISTRY,
    ModelParts,
    list_models,
    register_model,
    registered_builder,
)
from .card import LayerInfo, LoadedModel
from .custom import import_factory, module_parts
from .folding import speed_up
from .hooks import LOGITS, LayerTap
from .module_layers import module_layers, output_shapes
from .sanity import check_finite, check_no_zero_layer, modules_that_run
from .timm_models import PREFIX as TIMM_PREFIX
from .timm_models import timm_parts
from .tokens import adapt_tokens
from .weights import apply_state_dict, load_state_dict_file


def pick_device(requested: str | None = None) -> torch.device:
    """cuda if present, else mps, else cpu; an explicit request must be available."""
    if requested and requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise FeatvizError("Device 'cuda' was asked for but no CUDA GPU is available. Valid devices here: cpu"
                               + (", mps" if _has_mps() else "") + ".")
        if requested == "mps" and not _has_mps():
            raise FeatvizError("Device 'mps' was asked for but is not available. Valid devices here: cpu"
                               + (", cuda" if torch.cuda.is_available() else "") + ".")
        if requested.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise FeatvizError(f"Unknown device {requested!r}. Valid devices: auto, cpu, cuda, mps.")
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("mps") if _has_mps() else torch.device("cpu")


def _has_mps() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def _weights_digest(module: nn.Module) -> str:
    h = hashlib.blake2b(digest_size=12)
    for key, tensor in module.state_dict().items():
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _prepare(module: nn.Module, device: torch.device) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    # In-place activations would overwrite tapped outputs that autograd still needs.
    for m in module.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    return module.to(device)


def _probe_layers(parts: ModelParts, module: nn.Module, device: torch.device) -> tuple[dict[str, LayerInfo], list,
                                                                                      dict[str, list]]:
    """The listed layers (every module with a 4-D output when none are listed) with their sizes at the
    natural input size, the modules with weights the probe ran through (in order), and every module's
    output shape (module_layers.output_shapes): one forward pass."""
    names = parts.layer_names
    if names is None:
        names = [n for n, _ in module.named_modules() if n]
    modules = dict(module.named_modules())
    missing = [n for n in names if n != LOGITS and n not in modules]
    if missing:
        raise FeatvizError(f"Model lists layers it does not have: {', '.join(missing)}.")
    probe = torch.zeros(1, len(parts.mean), parts.input_size, parts.input_size, device=device)
    tap_names = [n for n in names if n != LOGITS]
    with (torch.no_grad(), modules_that_run(module) as ran, output_shapes(module) as shapes,
          LayerTap(module, tap_names + [LOGITS]) as tap):
        outputs = tap.run(probe)
    alias_of = {v: k for k, v in parts.aliases.items()}
    tokens = {n for n, (_, _, laid_on_grid) in shapes.items() if laid_on_grid}
    layers: dict[str, LayerInfo] = {}
    for name in tap_names:
        out = outputs.get(name)
        if isinstance(out, torch.Tensor) and out.dim() == 4:
            layers[name] = LayerInfo(name, out.shape[1], out.shape[2], out.shape[3], alias_of.get(name, ""),
                                     name in tokens)
    logits = outputs.get(LOGITS)
    if isinstance(logits, torch.Tensor) and logits.dim() == 2:
        layers[LOGITS] = LayerInfo(LOGITS, logits.shape[1], 1, 1, "")
    return layers, ran, shapes


def _parts_for(name, weights: str | None, mean, std, input_size) -> tuple[str, ModelParts]:
    """(the model's name, its parts) for a registered name, `timm:NAME`, `package.module:factory` or
    an nn.Module."""
    if isinstance(name, nn.Module):
        parts = module_parts(name, mean, std, input_size)
        label = type(name).__name__
    elif not isinstance(name, str):
        raise FeatvizError(f"load_model takes a model name or an nn.Module, not {type(name).__name__}.")
    elif name.startswith(TIMM_PREFIX):
        return name, timm_parts(name, weights)
    elif ":" in name:
        parts, label = import_factory(name), name
    elif registered_builder(name):
        return name, registered_builder(name)(weights)
    else:
        raise unknown_choice("model", name, list(REGISTRY) + ["timm:NAME", "package.module:factory"])
    if weights:
        apply_state_dict(parts.module, load_state_dict_file(weights, parts.module), label)
    return label, parts


def load_model(name: str | nn.Module = DEFAULT_MODEL, device: str | torch.device | None = None,
               weights: str | None = None, *, mean=None, std=None, input_size: int | None = None) -> LoadedModel:
    """Build, load and freeze a model.

    `name` is a registered name (see `list_models()`), `timm:NAME` for any timm model,
    `package.module:factory` for your own, or an `nn.Module` itself (frozen in place; `mean`, `std`
    and `input_size` say how to feed it, else its timm config or ImageNet's and 224 px).
    `weights` is a local state-dict file; without it registered models use their packaged or
    downloadable pretrained weights. Weights with NaN or infinite values, or a layer of zeros on the
    path, are refused (UnusableWeightsError, naming the tensor).
    """
    device = device if isinstance(device, torch.device) else pick_device(device)
    name, parts = _parts_for(name, weights, mean, std, input_size)
    check_finite(parts.module, name)  # NaN weights would fail far from here, or render gray squares
    module = _prepare(parts.module, device)
    parts.layer_names = adapt_tokens(module, parts.layer_names)
    try:
        (layers, ran, shapes), digest = _probe_layers(parts, module, device), _weights_digest(module)
    except RuntimeError as exc:  # a custom module that cannot take an image of its stated size
        raise FeatvizError(f"Model {name!r} does not run on a {len(parts.mean)}x{parts.input_size}x{parts.input_size} "
                           f"image ({str(exc)[:200]}): check its mean/std (one per input channel) "
                           "and input size.") from exc
    check_no_zero_layer(module, ran, name)
    module = speed_up(module, len(parts.mean), parts.input_size, device, set(layers))
    return LoadedModel(
        name=name,
        module=module,
        mean=tuple(float(v) for v in parts.mean),
        std=tuple(float(v) for v in parts.std),
        input_size=parts.input_size,
        layers=layers,
        modules=module_layers(shapes, layers, {n for n, _ in module.named_modules()}),
        aliases=dict(parts.aliases),
        digest=digest,
        device=device,
    )
