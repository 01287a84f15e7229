#!/usr/bin/env python
"""Benchmark: dataset exemplar scans, images per second in one process and on Ray, and what 50,000
images (ImageNet's validation set) would take.

    python bench/exemplars.py                  # 512 photos; writes bench/exemplars.json
    python bench/exemplars.py --quick          # 48 photos, a smoke run; writes under out/bench-exemplars-quick/
    python bench/exemplars.py --images DIR     # your own folder instead of the generated one

The photos are made from the ones scikit-image ships: random crops, flips and rescales to ImageNet's
typical 500x375, saved as JPEG (quality 90), so decoding costs what it costs on ImageNet. Every scan
is Lite0, blocks.1 and blocks.5, top 9, no cache. Measured: decoding + resizing alone (one thread),
the forward pass alone (this device), the whole scan in one process, and the whole scan on a local Ray
cluster with 2 single-threaded workers (inside a loopback-only network namespace, `unshare -n`, as the
tests do: Ray binds to the machine's address otherwise). The projections are arithmetic on those
figures, printed with their formula.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from featviz_core import load_model  # noqa: E402
from featviz_core.analysis.exemplars import spatial_maxima  # noqa: E402
from featviz_core.analysis.scan import scan_folder  # noqa: E402
from featviz_core.analysis.selfcheck import natural_photos  # noqa: E402
from featviz_core.inputs.imagefolder import list_images, model_input, open_image  # noqa: E402

LAYERS = ["blocks.1", "blocks.5"]
TOP, BATCH = 9, 16
SHARD, QUICK_SHARD = 64, 8  # several shards even in a quick run, so a rate after the first is measured
TARGET = 50_000


def make_folder(directory: str, count: int, seed: int = 0) -> str:
    """`count` ImageNet-sized JPEGs cut from scikit-image's photos (kept between runs)."""
    from PIL import Image

    os.makedirs(directory, exist_ok=True)
    if len([n for n in os.listdir(directory) if n.endswith(".jpg")]) == count:
        return directory
    rng, photos = np.random.default_rng(seed), [Image.fromarray(p) for p in natural_photos()]
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(min(photo.size) * rng.uniform(0.5, 1.0))
        x, y = rng.integers(0, photo.width - side + 1), rng.integers(0, photo.height - side + 1)
        img = photo.crop((x, y, x + side, y + int(side * 0.75))).resize((500, 375), Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        img.save(os.path.join(directory, f"{i:06d}.jpg"), quality=90)
    return directory


def time_decode(folder: str, size: int, limit: int) -> float:
    """Seconds per image to open, decode, resize and centre-crop (one thread)."""
    listing = list_images(folder)
    paths = [os.path.join(listing.root, p) for p in listing.paths[:limit]]
    start = time.perf_counter()
    for path in paths:
        model_input(open_image(path), size)
    return (time.perf_counter() - start) / len(paths)


def time_forward(model, batch: int, reps: int) -> float:
    """Seconds per image of the scan's forward pass alone (both layers at once), on the model's device."""
    images = np.random.default_rng(0).integers(0, 256, (batch, model.input_size, model.input_size, 3), dtype=np.uint8)
    spatial_maxima(model, images, LAYERS)  # warm-up
    start = time.perf_counter()
    for _ in range(reps):
        spatial_maxima(model, images, LAYERS)
    return (time.perf_counter() - start) / (reps * batch)


def time_scan(model, folder: str, shard: int, ray=None, workers=None) -> dict:
    """A whole scan: wall seconds, and images per second after the first shard came back (startup excluded)."""
    start = time.perf_counter()
    first = None
    for event in scan_folder(model, folder, LAYERS, TOP, None, shard, BATCH, ray=ray, workers=workers):
        if event.shards and first is None:
            first = (time.perf_counter(), event.done)
        if event.result is not None:
            total = event.done
    wall = time.perf_counter() - start
    steady = ((total - first[1]) / max(time.perf_counter() - first[0], 1e-9) if first and total > first[1]
              else total / wall)
    return {"images": total, "wall_s": round(wall, 2), "images_per_s": round(total / wall, 2),
            "steady_images_per_s": round(steady, 2)}


def ray_scan(folder: str, shard: int) -> dict:
    """The Ray measurement in a loopback-only network namespace (this script again, `--ray-part`)."""
    ray_tmp = tempfile.mkdtemp(prefix="fvbench", dir="/tmp")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": ray_tmp, "PYTHONPATH": REPO}
    command = (f"ip link set lo up && exec {sys.executable} {os.path.abspath(__file__)} "
               f"--ray-part {folder} --shard {shard}")
    try:
        done = subprocess.run(["unshare", "-n", "bash", "-c", command], env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout)[-400:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def projections(decode_s: float, forward_s: float, one: dict, ray2: dict, device: str) -> dict:
    """What 50,000 images take, from the measured figures (each with its formula)."""
    out = {"cpu_one_process_h": round(TARGET / one["steady_images_per_s"] / 3600, 2)}
    if "steady_images_per_s" in ray2:
        startup = max(ray2["wall_s"] - ray2["images"] / ray2["steady_images_per_s"], 0)
        out["cpu_machines_like_this"] = {str(n): round((startup + TARGET / (n * ray2["steady_images_per_s"])) / 3600, 3)
                                         for n in (1, 2, 4, 8, 16)}
    # One GPU: a worker decodes its images on one CPU core, then runs the forward pass on the GPU, so
    # a worker's rate is 1 / (decode + forward); W workers share the GPU until its forward time is the
    # limit. Here the forward time is this device's when it is a GPU, else a stated assumption.
    gpu_forward = forward_s if device.startswith("cuda") else 0.5e-3
    per_gpu = {w: min(w / (decode_s + gpu_forward), 1 / gpu_forward) for w in (1, 4, 8)}
    out["one_gpu_h"] = {f"{w}_workers": round(TARGET / rate / 3600, 3) for w, rate in per_gpu.items()}
    out["one_gpu_forward_s_per_image"] = gpu_forward
    out["one_gpu_forward_measured"] = device.startswith("cuda")
    out["n_gpu_machines_8_workers_h"] = {str(n): round(TARGET / (n * per_gpu[8]) / 3600, 3) for n in (1, 2, 4, 8)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="48 photos, a smoke run")
    parser.add_argument("--images", help="scan this folder instead of the generated photos")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray measurement")
    parser.add_argument("--ray-part", help=argparse.SUPPRESS)
    parser.add_argument("--shard", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ray_part:  # inside the namespace: one Ray scan, one JSON line
        print(json.dumps(time_scan(load_model("lite0"), args.ray_part, args.shard, ray=True, workers=2)))
        return 0
    out_dir = os.path.join(REPO, "out", "bench-exemplars-quick") if args.quick else os.path.join(REPO, "bench")
    folder = args.images or make_folder(
        os.path.join(REPO, "out", "bench-photos-quick" if args.quick else "bench-photos"), 48 if args.quick else 512)
    model = load_model("lite0")
    device = str(model.device)
    decode_s = time_decode(folder, model.input_size, 16 if args.quick else 128)
    forward_s = time_forward(model, BATCH, 2 if args.quick else 8)
    print(f"decode + resize: {1 / decode_s:.1f} img/s on one thread; "
          f"forward pass alone: {1 / forward_s:.1f} img/s on {device}")
    shard = QUICK_SHARD if args.quick else SHARD
    one = time_scan(model, folder, shard)
    print(f"one process: {one}")
    ray2 = {"skipped": True} if args.no_ray else ray_scan(folder, shard)
    print(f"Ray, 2 workers: {ray2}")
    result = {"device": device, "threads": __import__("torch").get_num_threads(), "layers": LAYERS, "top": TOP,
              "shard": shard, "batch": BATCH, "decode_images_per_s": round(1 / decode_s, 2),
              "forward_images_per_s": round(1 / forward_s, 2), "one_process": one, "ray_2_workers": ray2,
              "projection_50k": projections(decode_s, forward_s, one, ray2, device)}
    print(json.dumps(result["projection_50k"], indent=2))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "exemplars.json" if not args.quick else "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
