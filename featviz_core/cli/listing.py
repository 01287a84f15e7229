"""`python -m featviz_core models` (the registered models) and `layers` (a model's visualizable layers;
with --all every module that is a layer too)."""
from __future__ import annotations

import argparse

from ..models import LOGITS, LoadedModel, list_models, load_model
from ..spec.layers import ANY_MODULE
from ._common import model_args


def add_parser(subparsers) -> None:
    subparsers.add_parser("models", help="list the registered models").set_defaults(listing="models")
    layers = subparsers.add_parser("layers", help="list a model's visualizable layers")
    model_args(layers)
    layers.add_argument("--all", action="store_true",
                        help="every module with a feature-map output (any of them is a valid layer), not only "
                             "the listed ones")
    layers.set_defaults(listing="layers")


def cmd_models() -> None:
    for name, desc in list_models().items():
        print(f"{name:<10} {desc}")
    print(f"{'timm:NAME':<10} any timm model by name (pretrained weights when online, or --weights FILE)")


def cmd_layers(model: LoadedModel, every: bool = False) -> None:
    """The listed layers; `every`: every module that is a layer, shallow to deep (then the logits)."""
    shown = [model.info(n) for n in model.modules] + [model.layers[LOGITS]] * (LOGITS in model.layers)
    shown = shown if every else list(model.layers.values())
    print(f"{model.name}  input {model.in_channels}x{model.input_size}x{model.input_size}  weights {model.digest}")
    wide = max([14] + [len(info.name) + 2 for info in shown])  # a ViT's blocks.11.mlp.fc1
    print(f"{'layer':<{wide}}{'alias':<14}{'channels':>9}  output")
    for info in shown:
        grid = f"{info.height}x{info.width}" + (" tokens" if info.tokens else "")
        print(f"{info.name:<{wide}}{info.alias:<14}{info.channels:>9}  {grid}")
    if every:
        print(f"{len(shown)} layers: the listed ones (with an alias or not) and every other module with a "
              "feature-map output, read as the listed ones are (a capped clamp such as ReLU6 before its cap).")
    else:
        print(f"{len(shown)} listed layers. {ANY_MODULE}")


def run(args: argparse.Namespace) -> int:
    if args.listing == "models":
        cmd_models()
    else:
        cmd_layers(load_model(args.model, device=args.device, weights=args.weights), args.all)
    return 0
