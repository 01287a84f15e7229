#!/usr/bin/env python
"""Seconds per picture-step of each offline model at its own input size, on this machine:
EfficientNet-Lite0/1/2 (packaged ImageNet weights) and ViT-Tiny through `timm:` (random weights: the
speed of a ViT does not depend on them), a deep layer each, batches of 4 pictures, the default recipe.

    python bench/models.py                 # prints a markdown table (the README's models table cites it)
    python bench/models.py --steps 16      # more steps per measurement
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import timm  # noqa: E402
import torch  # noqa: E402

from featviz_core import RenderSettings, collect, load_model, render_channels  # noqa: E402

CASES = [("lite0", "blocks.5", None), ("lite1", "blocks.5", None), ("lite2", "blocks.5", None),
         ("timm:vit_tiny_patch16_224", "blocks.6", "vit_tiny")]


def vit_weights(folder: str) -> str:
    """A random ViT-Tiny state dict saved as a file: offline, timm cannot download its weights."""
    path = os.path.join(folder, "vit_tiny.pth")
    torch.save(timm.create_model("vit_tiny_patch16_224", pretrained=False).state_dict(), path)
    return path


def seconds_per_picture_step(name: str, layer: str, weights: str | None, steps: int, batch: int) -> tuple[int, float]:
    model = load_model(name, device="cpu", weights=weights)
    settings = RenderSettings(size=model.input_size, steps=steps)
    targets = [(layer, c) for c in range(batch)]
    collect(render_channels(model, targets[:1], settings.with_(steps=2), batch_size=1))  # warm up
    start = time.perf_counter()
    collect(render_channels(model, targets, settings, batch_size=batch))
    return model.input_size, (time.perf_counter() - start) / (steps * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}, {args.batch} pictures a batch, {args.steps} steps\n")
    print("| model | layer | input px | s per picture-step |\n|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for name, layer, random_weights in CASES:
            weights = vit_weights(folder) if random_weights else None
            size, seconds = seconds_per_picture_step(name, layer, weights, args.steps, args.batch)
            print(f"| {name} | {layer} | {size} | {seconds:.3f} |", flush=True)


if __name__ == "__main__":
    main()
