#!/usr/bin/env python
"""Benchmark: featviz's methods against the original Keras recipe and torch-lucent on EfficientNet-Lite0.

    ./bench.sh                                # from a fresh checkout: installs into .venv, then the full run
    python bench/benchmark.py                 # full run; writes bench/results.json, docs/bench_*.png, README.md
    python bench/benchmark.py --quick         # smoke run (~1-2 min); writes under out/bench-quick/ only
    python bench/benchmark.py --skip-lucent   # no torch-lucent rows (and no targets that need them)

Every row renders the same channels of an early, a middle and a late layer, times the whole batch
(wall clock, no cache) and scores each picture with featviz's self-check: the robust z-score of its
channel against natural photos and the channel's rank within its layer (1 = most specific).
torch-lucent is installed into this Python environment when missing (never into the repository).
"""
from __future__ import annotations

import argparse
import copy
import datetime
import importlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from featviz_core import DEFAULT_METHOD, METHODS, RECIPES, RenderSettings, collect, load_model, render_channels  # noqa: E402
from featviz_core.analysis.selfcheck import score_pictures  # noqa: E402
from featviz_core.optvis.param import octave_sizes  # noqa: E402
from featviz_core.spec.settings import STEPS_RANGE  # noqa: E402
from featviz_core.store.disk import Store  # noqa: E402

README = os.path.join(REPO, "README.md")
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
# installed with --no-deps: its pins (kornia<=0.4.1, pytest, coveralls...) are not all needed
LUCENT_PACKAGES = ["torch-lucent==0.1.8"]
LUCENT_RUNTIME = ["kornia==0.4.1", "decorator", "ipython"]  # what `lucent.optvis.render` really imports
KERAS_RECIPE = dict(method="classic", size=412, steps=135)  # 9 octaves x 15 steps, 1.2x upscale, 412 px final
CLASS_LOGITS = (285, 1, 207, 948)  # Egyptian cat, goldfish, golden retriever, Granny Smith
DEFAULT_ROW = f"featviz default ({DEFAULT_METHOD})"
KERAS_ROW = "classic as the Keras example"
LUCENT_ROW = "torch-lucent render_vis"
SAME_TIME_ROW = "featviz default, lucent's time"


@dataclass(frozen=True)
class Plan:
    """What a run renders: full or quick."""

    layers: tuple[str, ...]
    per_layer: int  # channels per layer, spread evenly over the layer
    default: RenderSettings
    keras: RenderSettings
    lucent_steps: int
    lucent_size: int
    batch_counts: tuple[int, ...]  # channels sharing one batch (the last: the whole layer)
    batch_layer: str
    sizes: tuple[int, ...]
    deep_layers: tuple[str, ...]
    deep_per_layer: int
    logits: tuple[int, ...]


def make_plan(quick: bool) -> Plan:
    if quick:
        return Plan(("blocks.1", "blocks.3", "blocks.5"), 1, RenderSettings(steps=8),
                    RenderSettings(method="classic", size=160, steps=9), 8, 224, (1, 4), "blocks.3", (128, 224),
                    ("blocks.6",), 1, CLASS_LOGITS[:1])
    return Plan(("blocks.1", "blocks.3", "blocks.5"), 5, RenderSettings(), RenderSettings(**KERAS_RECIPE), 512, 224,
                (1, 8, 32, 80), "blocks.3", (128, 224, 320), ("blocks.6", "bn2"), 4, CLASS_LOGITS)


# ---------------------------------------------------------------- measurements


@dataclass
class Picture:
    layer: str
    channel: int
    image: np.ndarray  # HxWx3 uint8
    z: float = float("nan")
    rank: int = 0


class Stopwatch:
    """Wall-clock and process CPU seconds of a block (CPU time helps read runs on a shared machine)."""

    wall = cpu = 0.0

    def __enter__(self) -> "Stopwatch":
        self._start = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc) -> None:
        self.wall += time.perf_counter() - self._start[0]
        self.cpu += time.process_time() - self._start[1]


@dataclass
class Row:
    name: str
    settings: str
    clock: Stopwatch  # the whole render of all the row's channels
    pictures: list[Picture]
    device: str
    rescored: bool = False  # the pictures of another row, resized and scored at another size

    @property
    def seconds_per_channel(self) -> float:
        return self.clock.wall / len(self.pictures)

    def summary(self) -> dict:
        layers = list(dict.fromkeys(p.layer for p in self.pictures))
        per_layer = {layer: quality([p for p in self.pictures if p.layer == layer]) for layer in layers}
        return {"seconds_per_channel": self.seconds_per_channel, "channels_per_second": 1 / self.seconds_per_channel,
                "cpu_seconds_per_channel": self.clock.cpu / len(self.pictures), "layers": per_layer,
                "all": quality(self.pictures)}


def quality(pictures: Sequence[Picture]) -> dict:
    return {"median_z": float(np.median([p.z for p in pictures])),
            "ranked_first": float(np.mean([p.rank == 1 for p in pictures])), "channels": len(pictures)}


def spread_channels(count: int, wanted: int) -> list[int]:
    """`wanted` channels spread evenly over 0..count-1 (the same ones for every method)."""
    if wanted <= 1:
        return [count // 2]
    return sorted({int(round(i * (count - 1) / max(wanted - 1, 1))) for i in range(wanted)})


def pick_channels(model, layers: Sequence[str], per_layer: int) -> list[tuple[str, int]]:
    return [(layer, c) for layer in layers for c in spread_channels(model.layers[layer].channels, per_layer)]


def render_featviz(model, layer_channels, settings: RenderSettings, batch_size: int | None = None):
    """Pictures and timing of one uncached featviz run."""
    with Stopwatch() as clock:
        results = collect(render_channels(model, layer_channels, settings, store=None, batch_size=batch_size))
    by_target = {(r.layer, r.channel): r.image for r in results}
    return [Picture(layer, channel, by_target[(model.resolve_layer(layer), channel)])
            for layer, channel in layer_channels], clock


def score(model, pictures: list[Picture], stats_store: Store | None) -> list[Picture]:
    """Fill in each picture's self-check z and rank (scored layer by layer, size by size)."""
    groups: dict[tuple[str, int], list[Picture]] = {}
    for p in pictures:
        groups.setdefault((p.layer, p.image.shape[0]), []).append(p)
    for (layer, _), group in groups.items():
        checks = score_pictures(model, [p.image for p in group], layer, [p.channel for p in group], store=stats_store)
        for p, check in zip(group, checks):
            p.z, p.rank = check.z, check.rank
    return pictures


def rescored(model, row: Row, size: int, stats) -> Row:
    """The same pictures resized to `size` px and scored there: z compares a picture with photos of
    its own size, and larger photos average over more of the frame (a smaller spread, so larger z),
    so only pictures scored at one size can be compared."""
    from PIL import Image

    def resize(image: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))

    pictures = [Picture(p.layer, p.channel, resize(p.image)) for p in row.pictures]
    return Row(f"{row.name}, scored at {size} px", row.settings, row.clock, score(model, pictures, stats), row.device,
               rescored=True)


def add_rescored(model, rows: list[Row], size: int, stats) -> None:
    """After a row whose pictures are not `size` px, add the same pictures scored at `size` px."""
    if rows[-1].pictures[0].image.shape[0] != size:
        rows.append(rescored(model, rows[-1], size, stats))
        report_row(rows[-1])


def warm_up(model, layer_channels, settings: RenderSettings) -> None:
    """A short render of the first row's batches so that row does not pay for thread pools, kernel
    selection and the allocator's first large blocks (with 2 steps the first row still ran ~45 %
    slower than the same settings later in the run)."""
    collect(render_channels(model, layer_channels, settings.with_(steps=24), store=None))


# ---------------------------------------------------------------- torch-lucent


def ensure_lucent():
    """Import lucent, installing it into this environment first if it is missing (torch is never touched)."""
    try:
        return importlib.import_module("lucent.optvis.render")
    except ImportError:
        pass
    pins = os.path.join(REPO, "out", "bench-pins.txt")
    os.makedirs(os.path.dirname(pins), exist_ok=True)
    with open(pins, "w") as f:  # constraints: whatever gets installed must keep this torch and torchvision
        f.write("\n".join(f"{m}=={importlib.import_module(m).__version__.split('+')[0]}"
                          for m in ("torch", "torchvision")) + "\n")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    print(f"installing {' '.join(LUCENT_PACKAGES)} (--no-deps) and {' '.join(LUCENT_RUNTIME)} into {sys.prefix}",
          flush=True)
    subprocess.check_call(pip + ["--no-deps"] + LUCENT_PACKAGES)
    subprocess.check_call(pip + ["-c", pins] + LUCENT_RUNTIME)
    importlib.invalidate_caches()
    return importlib.import_module("lucent.optvis.render")


def lucent_version() -> str:
    from importlib.metadata import version

    return f"torch-lucent {version('torch-lucent')}, kornia {version('kornia')}"


def render_lucent(model, layer_channels, steps: int, size: int, seed: int = 0):
    """lucent's render_vis with its defaults (fft + decorrelated image, standard transforms, Adam 0.05),
    one call per layer with a batch of pictures, each with its own channel objective (lucent's
    `batch=` argument). The model gets lucent's own hooks on a fresh copy, because render_vis never
    removes them; the input is normalized as Lite0 expects instead of lucent's ImageNet preprocess."""
    render = ensure_lucent()
    from lucent.optvis import objectives, param, transform

    device = transform.device  # lucent always uses cuda:0 when there is one
    pictures, clock = [], Stopwatch()
    for layer in dict.fromkeys(layer for layer, _ in layer_channels):
        channels = [c for name, c in layer_channels if name == layer]
        net = copy.deepcopy(model.module).to(device)
        objective = sum(objectives.channel(layer.replace(".", "_"), c, batch=b) for b, c in enumerate(channels))
        normalize = lambda x: model.normalize(x)  # noqa: E731  (lite0: (x - 0.5) / 0.5)
        torch.manual_seed(seed)
        np.random.seed(seed)
        with clock:
            images = render.render_vis(net, objective, param_f=lambda: param.image(size, batch=len(channels)),
                                       transforms=transform.standard_transforms + [normalize], thresholds=(steps,),
                                       preprocess=False, progress=False, show_image=False)[-1]
        pictures += [Picture(layer, c, (img * 255).round().clip(0, 255).astype(np.uint8))
                     for c, img in zip(channels, images)]
    return pictures, clock, str(device)


# ---------------------------------------------------------------- the rows


def describe(settings: RenderSettings) -> str:
    """The exact settings of a featviz row, including its method's recipe."""
    r = RECIPES[settings.method]
    octaves = (f", {r.octaves} octaves ({'/'.join(map(str, octave_sizes(settings.size, r.octaves)))} px)"
               if r.octaves > 1 else "")
    rob = "lucid robustness" if r.robustness.active else "no transforms"
    wake = f", redirected ReLU for the first {min(r.wake_steps, settings.steps)} steps" if r.wake_steps else ""
    return (f"{settings.method}: {settings.size} px, {settings.steps} steps, {r.param} param, "
            f"{r.optimizer} lr {r.lr:g}, "
            f"{rob}{octaves}{wake}, init {settings.init}, seed {settings.seed}")


def featviz_row(model, name: str, layer_channels, settings: RenderSettings, stats, batch_size=None) -> Row:
    pictures, clock = render_featviz(model, layer_channels, settings, batch_size)
    return Row(name, describe(settings), clock, score(model, pictures, stats), str(model.device))


def lucent_row(model, layer_channels, plan: Plan, stats) -> Row:
    pictures, clock, device = render_lucent(model, layer_channels, plan.lucent_steps, plan.lucent_size)
    settings = (f"render_vis: param.image({plan.lucent_size}) fft+decorrelate, {plan.lucent_steps} steps, Adam 0.05, "
                f"standard_transforms, one batch per layer ({lucent_version()})")
    return Row(LUCENT_ROW, settings, clock, score(model, pictures, stats), device)


def same_time_settings(model, channels, plan: Plan, default_row: Row, seconds_per_channel: float) -> RenderSettings:
    """featviz's default method at lucent's picture size with as many steps as fit in lucent's time per
    channel. The cost of a step comes from the default row when it already renders at lucent's size,
    else from a calibration run of as many steps (a short probe overstates it: fixed costs and the
    redirected-ReLU steps at the start weigh more)."""
    settings = plan.default.with_(size=plan.lucent_size)
    clock = default_row.clock
    if plan.default.size != plan.lucent_size:
        print(f"- calibrating: {settings.steps} steps at {settings.size} px ...", flush=True)
        _, clock = render_featviz(model, channels, settings)
    per_step = clock.wall / len(channels) / settings.steps
    return settings.with_(steps=int(min(STEPS_RANGE[1], max(1, round(seconds_per_channel / per_step)))))


def report_row(row: Row) -> None:
    s = row.summary()
    layers = "  ".join(f"{k}: z {v['median_z']:.1f} first {v['ranked_first']:.0%}" for k, v in s["layers"].items())
    print(f"  {row.name:<34} {row.seconds_per_channel:8.2f} s/ch ({s['cpu_seconds_per_channel']:.2f} CPU s)   "
          f"median z {s['all']['median_z']:6.1f}  "
          f"first {s['all']['ranked_first']:4.0%}   [{layers}]", flush=True)


def timed(label: str, fn: Callable[[], Row]) -> Row:
    print(f"- {label} ...", flush=True)
    row = fn()
    report_row(row)
    return row


def main_rows(model, plan: Plan, channels, stats, skip_lucent: bool) -> list[Row]:
    rows = [timed(DEFAULT_ROW, lambda: featviz_row(model, DEFAULT_ROW, channels, plan.default, stats))]
    for method in (m for m in METHODS if m != DEFAULT_METHOD):
        settings = plan.default.with_(method=method)
        rows.append(timed(f"featviz {method}",
                          lambda: featviz_row(model, f"featviz {method}", channels, settings, stats)))
    rows.append(timed(KERAS_ROW, lambda: featviz_row(model, KERAS_ROW, channels, plan.keras, stats)))
    add_rescored(model, rows, plan.lucent_size, stats)
    if skip_lucent:
        return rows
    lucent = timed(LUCENT_ROW, lambda: lucent_row(model, channels, plan, stats))
    rows.append(lucent)
    same = same_time_settings(model, channels, plan, rows[0], lucent.seconds_per_channel)
    rows.append(timed(f"{SAME_TIME_ROW} ({same.steps} steps, {same.size} px)",
                      lambda: featviz_row(model, SAME_TIME_ROW, channels, same, stats)))
    return rows


def batch_rows(model, plan: Plan, stats) -> list[Row]:
    """Seconds per channel as 1, 8, 32 ... channels of one layer share a batch (default method)."""
    rows = []
    for count in plan.batch_counts:
        channels = pick_channels(model, [plan.batch_layer], count)
        name = f"{count} channels of {plan.batch_layer} in one batch"
        rows.append(timed(name, lambda: featviz_row(model, name, channels, plan.default, stats, batch_size=count)))
    return rows


def size_rows(model, plan: Plan, channels, stats) -> list[Row]:
    rows = []
    for size in plan.sizes:
        name = f"default method at {size} px"
        rows.append(timed(name, lambda: featviz_row(model, name, channels, plan.default.with_(size=size), stats)))
        add_rescored(model, rows, plan.lucent_size, stats)
    return rows


def deep_rows(model, plan: Plan, stats) -> list[Row]:
    channels = pick_channels(model, plan.deep_layers, plan.deep_per_layer)
    logits = [("logits", c) for c in plan.logits]
    return [timed("deep layers", lambda: featviz_row(model, "deep layers, default", channels, plan.default, stats)),
            timed("class logits", lambda: featviz_row(model, "class logits, default (objective logit)", logits,
                                                       plan.default.with_(objective="logit"), stats))]


# ---------------------------------------------------------------- targets


GPU_LAYER_SECONDS = 10.0  # the GPU target: a whole 80-channel layer at 224 px on one H100


def check_targets(sections: dict[str, list[Row]], device: str) -> list[dict]:
    """The issue's targets, from the main rows (SKIP where lucent was not run) and, on a GPU, the
    whole-layer batch row (SKIP on any other device: the target is an H100's)."""
    by_name = {r.name: r.summary() for r in sections["Methods"]}
    default, lucent, same = by_name[DEFAULT_ROW], by_name.get(LUCENT_ROW), by_name.get(SAME_TIME_ROW)

    def target(name, value, goal, fmt, at_most=False, applies=True):
        ok = None if value is None or not applies else bool(value <= goal if at_most else value >= goal)
        shown = "n/a" if value is None else fmt.format(value)
        return {"target": name, "value": shown,
                "goal": ("<= " if at_most else "") + fmt.format(goal) if goal is not None else "n/a",
                "status": {True: "PASS", False: "FAIL", None: "SKIP"}[ok]}

    dz, d1 = default["all"]["median_z"], default["all"]["ranked_first"]
    lz = lucent["all"]["median_z"] if lucent else None
    whole = sections["Channels per batch"][-1]
    layer_quality = whole.summary()["all"]
    return [
        target("default median z >= lucent's", dz if lucent else None, lz, "{:.2f}"),
        target("default ranked first >= 95 %", d1, 0.95, "{:.0%}"),
        target("default channels/s >= 10x lucent's",
               default["channels_per_second"] / lucent["channels_per_second"] if lucent else None, 10.0, "{:.1f}x"),
        target("same time as lucent: median z >= 1.2x lucent's",
               same["all"]["median_z"] / lz if lucent and same and lz > 0 else None, 1.2, "{:.2f}x"),
        target(f"GPU: {whole.name}, seconds for the batch (its z {layer_quality['median_z']:.1f}, "
               f"{layer_quality['ranked_first']:.0%} ranked first; SKIP off a GPU)",
               whole.clock.wall, GPU_LAYER_SECONDS, "{:.1f} s", at_most=True, applies=device.startswith("cuda")),
    ]


# ---------------------------------------------------------------- outputs


def machine(device: str) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "device": device, "gpu": gpu, "python": platform.python_version(),
            "load_average": [round(v, 2) for v in os.getloadavg()]}


def row_json(row: Row) -> dict:
    return {"name": row.name, "settings": row.settings, "device": row.device, **row.summary(),
            "pictures": [{"layer": p.layer, "channel": p.channel, "z": round(p.z, 3), "rank": p.rank}
                         for p in row.pictures]}


def quality_cell(q: dict) -> str:
    return f"{q['median_z']:.1f} / {q['ranked_first']:.0%}"


def markdown_table(rows: list[Row], title: str) -> list[str]:
    layers = list(dict.fromkeys(p.layer for r in rows for p in r.pictures))
    lines = [f"**{title}** (cells: median z / ranked first)", "",
             "| row | s / channel | CPU s / channel | channels / s | " + " | ".join(layers) + " | all |",
             "|---|---:|---:|---:|" + "---:|" * (len(layers) + 1)]
    for row in rows:
        s = row.summary()
        cells = [quality_cell(s["layers"][layer]) if layer in s["layers"] else "" for layer in layers]
        lines.append(f"| {row.name} | {row.seconds_per_channel:.2f} | {s['cpu_seconds_per_channel']:.2f} | "
                     f"{s['channels_per_second']:.2f} | "
                     + " | ".join(cells) + f" | {quality_cell(s['all'])} |")
    return lines + [""]


def markdown(doc: dict, sections: dict[str, list[Row]], targets: list[dict], command: str) -> str:
    m = doc["machine"]
    lines = [f"Run on {doc['date']} with `{command}`: {m['cpu']}, {m['cores']} cores "
             f"({m['torch_threads']} torch threads), "
             f"torch {m['torch']}, device {m['device']}{', ' + m['gpu'] if m['gpu'] else ''}; "
             "load average at start "
             f"{m['load_average'][0]}. Model: EfficientNet-Lite0 (`lite0`). "
             "Seconds per channel: wall clock of the whole "
             "batch divided by its channels, no cache (CPU s: the process's CPU time, all threads, likewise). "
             "Quality: featviz's self-check (robust z of the channel against "
             "natural photos under random transforms; rank 1 = the picture excites its own channel most in its "
             "layer).", ""]
    for title, rows in sections.items():
        lines += markdown_table(rows, title)
    lines += ["**Settings**", ""] + [f"- {r.name}: {r.settings}" for r in sections["Methods"] if not r.rescored] + [""]
    lines += ["**Targets**", "", "| target | measured | goal | result |", "|---|---:|---:|---|"]
    lines += [f"| {t['target']} | {t['value']} | {t['goal']} | {t['status']} |" for t in targets]
    lines += ["", "![methods side by side](docs/bench_comparison.png)", "",
              "![deep layers and class logits](docs/bench_deep.png)"]
    return "\n".join(lines)


def update_readme(text: str, path: str = README, start: str = README_START, end: str = README_END,
                  heading: str = "## Benchmark") -> None:
    """Replace what lies between the markers; add a `heading` section with them if absent."""
    old = open(path).read() if os.path.exists(path) else ""
    block = f"{start}\n{text}\n{end}"
    if start in old and end in old:
        new = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, old, flags=re.S)
    else:
        new = old.rstrip("\n") + ("\n\n" if old.strip() else "") + heading + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(new)


def comparison_image(rows: list[Row], path: str, tile: int = 96):
    """Rows = methods, columns = channels, with labels; every picture resized to `tile`."""
    from PIL import Image, ImageDraw, ImageFont

    font, label_w, head_h, gap = ImageFont.load_default(), 230, 18, 4
    columns = list(dict.fromkeys((p.layer, p.channel) for row in rows for p in row.pictures))
    sheet = Image.new("RGB", (label_w + len(columns) * (tile + gap), head_h + len(rows) * (tile + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, (layer, channel) in enumerate(columns):
        draw.text((label_w + j * (tile + gap) + 2, 3), f"{layer}:{channel}", fill="black", font=font)
    for i, row in enumerate(rows):
        y = head_h + i * (tile + gap)
        q = row.summary()["all"]
        draw.text((4, y + tile // 2 - 14), row.name, fill="black", font=font)
        draw.text((4, y + tile // 2 + 2), f"{row.seconds_per_channel:.2f} s/ch, median z {q['median_z']:.1f}",
                  fill="gray", font=font)
        by_target = {(p.layer, p.channel): p for p in row.pictures}
        for j, key in enumerate(columns):
            p = by_target.get(key)
            if p is None:  # rows with other targets (deep layers vs. class logits) leave gaps
                continue
            x = label_w + j * (tile + gap)
            sheet.paste(Image.fromarray(p.image).resize((tile, tile), Image.LANCZOS), (x, y))
            draw.text((x + 2, y + tile - 12), f"z {p.z:.0f} #{p.rank}", fill="white", font=font, stroke_width=1,
                      stroke_fill="black")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sheet.save(path)


# ---------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="few channels and steps: a smoke run (~1-2 min); never touches README.md")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (lucent always uses cuda:0 when present)")
    p.add_argument("--skip-lucent", action="store_true", help="do not install or run torch-lucent")
    p.add_argument("--out", help="folder for results.json and bench_comparison.png "
                                 "(default: bench/ and docs/, or out/bench-quick/ with --quick)")
    p.add_argument("--no-readme", action="store_true", help="do not write the table into README.md")
    p.add_argument("--threads", type=int,
                   help="torch intra-op threads (default: torch's choice; 1 is steadier on a busy machine)")
    return p.parse_args(argv)


def output_paths(args) -> tuple[str, str]:
    out = args.out or (os.path.join(REPO, "out", "bench-quick") if args.quick else None)
    if out:
        return (os.path.join(out, "results.json"), os.path.join(out, "bench_comparison.png"),
                os.path.join(out, "bench_deep.png"))
    return (os.path.join(REPO, "bench", "results.json"), os.path.join(REPO, "docs", "bench_comparison.png"),
            os.path.join(REPO, "docs", "bench_deep.png"))


def main(argv=None) -> int:
    args = parse_args(argv)
    plan = make_plan(args.quick)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.skip_lucent:
        ensure_lucent()
    model = load_model("lite0", device=args.device)
    stats = Store(os.path.join(REPO, "out", "bench-stats"))  # natural-photo statistics only, never pictures
    channels = pick_channels(model, plan.layers, plan.per_layer)
    doc = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "machine": machine(str(model.device)),
           "quick": args.quick, "channels": [f"{layer}:{c}" for layer, c in channels]}
    print(f"featviz benchmark on {doc['machine']['cpu']} ({doc['machine']['cores']} cores, torch {torch.__version__}, "
          f"{model.device}), load {doc['machine']['load_average']}; channels {', '.join(doc['channels'])}", flush=True)
    warm_up(model, channels, plan.default)
    sections = {"Methods": main_rows(model, plan, channels, stats, args.skip_lucent),
                "Channels per batch": batch_rows(model, plan, stats),
                "Picture size": size_rows(model, plan, channels, stats),
                "Deep layers and class logits": deep_rows(model, plan, stats)}
    targets = check_targets(sections, str(model.device))
    for t in targets:
        print(f"{t['status']}: {t['target']}: {t['value']} (goal {t['goal']})")
    doc["sections"] = {title: [row_json(r) for r in rows] for title, rows in sections.items()}
    doc["targets"] = targets
    results_path, image_path, deep_path = output_paths(args)
    os.makedirs(os.path.dirname(results_path), exist_ok=True)
    with open(results_path, "w") as f:
        json.dump(doc, f, indent=1)
    comparison_image([r for r in sections["Methods"] if not r.rescored], image_path)
    comparison_image(sections["Deep layers and class logits"], deep_path)
    command = "python bench/benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.quick or args.no_readme:
        print(markdown(doc, sections, targets, command.strip()))
    else:
        update_readme(markdown(doc, sections, targets, command.strip()))
    print(f"wrote {results_path}, {image_path} and {deep_path}"
          + ("" if args.quick or args.no_readme else f" and {README}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
