#!/usr/bin/env python
"""Steps against quality: the default Fourier recipe against the one before it, on held-out channels.

    python bench/render_speed.py                # 8 channels each of blocks.1, blocks.3, blocks.5
    python bench/render_speed.py --per-layer 4 --steps 48,56

Every row renders the same channels (none of the dashboard's default view, channels 0-7) at 224 px
from the same noise, one torch thread as the dashboard's workers and the command line render, no
cache, and scores each picture with the self-check (z against natural photos, 8 jittered views;
rank among the layer's channels). "before" is the previous release's recipe: Adam with lucid's step
of 0.05 for 96 steps. A row's paired change is the mean over channels of log(z / z before) with its
standard error (n channels), so a row that moves every picture a little shows it. Prints a markdown
table (seconds per channel, median z, paired change, ranked first) and writes it to --out as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from featviz_core import RenderSettings, collect, load_model, render_channels  # noqa: E402
from featviz_core.optvis import render as render_module  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import Picture, score, spread_channels  # noqa: E402

BEFORE = dataclasses.replace(render_module.RECIPES["fourier"], optimizer="adam", lr=0.05, eps=1e-8)
BEFORE_STEPS = 96
LAYERS = ("blocks.1", "blocks.3", "blocks.5")


def held_out(count: int, wanted: int, skip: int = 8) -> list[int]:
    """`wanted` channels spread over skip..count-1 (the default view shows channels 0 to skip-1)."""
    return [skip + c for c in spread_channels(count - skip, wanted)]


def rendered(model, channels, recipe, steps: int) -> tuple[dict, float]:
    """{(layer, channel): picture} with `recipe` as the Fourier recipe, and seconds per channel."""
    saved = render_module.RECIPES["fourier"]
    render_module.RECIPES["fourier"] = recipe
    try:
        start = time.perf_counter()
        results = collect(render_channels(model, channels, RenderSettings(steps=steps), store=None))
        seconds = (time.perf_counter() - start) / len(channels)
    finally:
        render_module.RECIPES["fourier"] = saved
    return {(r.layer, r.channel): r.image for r in results}, seconds


def scores(model, pictures: dict) -> dict:
    """{(layer, channel): (z, rank)} from the benchmark's self-check scoring."""
    scored = score(model, [Picture(layer, channel, image) for (layer, channel), image in pictures.items()], None)
    return {(p.layer, p.channel): (p.z, p.rank) for p in scored}


def row(name: str, seconds: float, scored: dict, before: dict | None) -> dict:
    zs = np.array([z for z, _ in scored.values()])
    doc = {"row": name, "seconds_per_channel": round(seconds, 3), "n": len(zs),
           "median_z": round(float(np.median(zs)), 2),
           "ranked_first": round(float(np.mean([rank == 1 for _, rank in scored.values()])), 3), "layers": {}}
    for layer in dict.fromkeys(k[0] for k in scored):
        doc["layers"][layer] = round(float(np.median([scored[k][0] for k in scored if k[0] == layer])), 2)
    if before is not None:
        ratios = np.log([max(scored[k][0], 0.1) / max(before[k][0], 0.1) for k in scored])
        doc["paired_change"] = round(float(np.expm1(ratios.mean())), 4)
        doc["paired_se"] = round(float(ratios.std(ddof=1) / math.sqrt(len(ratios))), 4)
    return doc


def table(rows: list[dict]) -> str:
    layers = list(rows[0]["layers"])
    head = "| recipe | s per channel | median z (n) | " + " | ".join(layers)
    lines = [head + " | paired change in z | ranked first |",
             "|---|---:|---:|" + "---:|" * len(layers) + "---:|---:|"]
    for r in rows:
        change = (f"{100 * r['paired_change']:+.1f} % ± {100 * r['paired_se']:.1f}" if "paired_change" in r else "—")
        lines.append(f"| {r['row']} | {r['seconds_per_channel']:.2f} | {r['median_z']:.1f} ({r['n']}) | "
                     + " | ".join(f"{r['layers'][layer]:.1f}" for layer in layers)
                     + f" | {change} | {100 * r['ranked_first']:.0f} % |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-layer", type=int, default=8, choices=range(2, 33), metavar="2-32")
    parser.add_argument("--steps", default="48,56,64", help="the new recipe's step counts to compare (comma-separated)")
    parser.add_argument("--out", default="bench/render_speed.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model("lite0", device="cpu")
    channels = [(layer, c) for layer in LAYERS for c in held_out(model.layers[layer].channels, args.per_layer)]
    collect(render_channels(model, channels[:1], RenderSettings(steps=4), store=None))  # thread pools, allocator
    pictures, seconds = rendered(model, channels, BEFORE, BEFORE_STEPS)
    before = scores(model, pictures)
    rows = [row(f"before: Adam 0.05, {BEFORE_STEPS} steps", seconds, before, None)]
    recipe = render_module.RECIPES["fourier"]
    for steps in (int(s) for s in args.steps.split(",")):
        pictures, seconds = rendered(model, channels, recipe, steps)
        name = {"nadam": "NAdam", "adam": "Adam"}.get(recipe.optimizer, recipe.optimizer)
        rows.append(row(f"now: {name} {recipe.lr:g}, {steps} steps", seconds, scores(model, pictures), before))
        print(table(rows), flush=True)
    Path(args.out).write_text(json.dumps({"channels": channels, "rows": rows}, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
