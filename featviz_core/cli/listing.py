"""`python -m featviz_core models` (the registered models) and `layers` (a model's visualizable layers)."""
from __future__ import annotations

import argparse

from ..models import LoadedModel, list_models, load_model
from ._common import model_args


def add_parser(subparsers) -> None:
    subparsers.add_parser("models", help="list the registered models").set_defaults(listing="models")
    layers = subparsers.add_parser("layers", help="list a model's visualizable layers")
    model_args(layers)
    layers.set_defaults(listing="layers")


def cmd_models() -> None:
    for name, desc in list_models().items():
        print(f"{name:<10} {desc}")
    print(f"{'timm:NAME':<10} any timm model by name (pretrained weights when online, or --weights FILE)")


def cmd_layers(model: LoadedModel) -> None:
    print(f"{model.name}  input {model.in_channels}x{model.input_size}x{model.input_size}  weights {model.digest}")
    wide = max([14] + [len(name) + 2 for name in model.layers])  # a ViT's blocks.11.mlp.fc1
    print(f"{'layer':<{wide}}{'alias':<14}{'channels':>9}  output")
    for info in model.layers.values():
        grid = f"{info.height}x{info.width}" + (" tokens" if info.tokens else "")
        print(f"{info.name:<{wide}}{info.alias:<14}{info.channels:>9}  {grid}")


def run(args: argparse.Namespace) -> int:
    if args.listing == "models":
        cmd_models()
    else:
        cmd_layers(load_model(args.model, device=args.device, weights=args.weights))
    return 0
