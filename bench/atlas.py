#!/usr/bin/env python
"""Atlas benchmark: channels per second on blocks.1 of EfficientNet-Lite0 for one process and for Ray with
1 and 2 workers, and the whole Lite0 atlas's wall time projected from per-layer rates.

    python bench/atlas.py            # full run at the defaults (224 px, 96 steps); writes bench/atlas_results.json
                                     # and the README's atlas table
    python bench/atlas.py --quick    # smoke run (~2 min): 32 px, 2 steps; writes
                                     # out/bench-quick/atlas_results.json only

Ray binds to the machine's address, so the script runs itself inside a fresh network namespace
(`unshare -n`, needs root) with its own RAY_TMPDIR; --no-netns runs it as is. Rows:
- "one process, N threads": runner.render_channels as `featviz render` runs it (torch's threads);
- "atlas, this process": run_atlas in this process (one torch thread: the atlas's CPU rule);
- "atlas, Ray k workers": run_atlas on a local Ray cluster (num_cpus = the cores), k single-threaded actors.
Wall clock includes starting the actors (each loads the model); the time that takes, measured
apart on the same cluster, is also reported and left out of the rate a long atlas sees. Every row
renders the same batches, sized so that two workers share them evenly.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

from benchmark import machine, update_readme  # noqa: E402  (bench/ is this script's folder)
from featviz_core import RenderSettings, Store, collect, render_channels  # noqa: E402
from featviz_core.backends import ModelSource, run_work  # noqa: E402
from featviz_core.jobs.atlas import atlas_layers, plan_atlas, run_atlas  # noqa: E402
from featviz_core.jobs.batching import max_batch  # noqa: E402

LAYER = "blocks.1"
README_START, README_END = "<!-- atlas-bench:start -->", "<!-- atlas-bench:end -->"
NETNS_FLAG = "FEATVIZ_BENCH_NETNS"


@dataclass(frozen=True)
class Ready:
    """A work item that does nothing: its round trip times starting the workers (each loads the model)."""

    units: int = 0

    def run(self, model) -> None:
        return None


def startup_seconds(source, workers: int) -> float:
    start = time.perf_counter()
    list(run_work(source, [Ready()] * workers, ray="auto", workers=workers))  # one item per actor
    return time.perf_counter() - start


def even_batch_size(count: int, cap: int, workers: int = 2) -> int:
    """The largest batch size up to `cap` whose batches share out evenly between `workers` (a last
    round with one worker idle would measure the layer's tail, not the backend)."""
    batches = -(-count // cap)
    batches = -(-batches // workers) * workers
    return -(-count // batches)


def timed_atlas(source, model, settings, batch_size: int, ray=None, workers=None) -> dict:
    """run_atlas on blocks.1 into a fresh store. On Ray, the time to start the actors (measured
    apart, on the same cluster) is reported and left out of the rate a long atlas sees."""
    folder = tempfile.mkdtemp(prefix="fv-atlas-bench-")
    store = Store(folder)
    try:
        plan = plan_atlas(model, [LAYER], settings, store, batch_size)
        startup = startup_seconds(source, workers) if ray else 0.0
        start = time.perf_counter()
        run_atlas(source, model, plan, store, ray, workers, progress=False)
        wall = time.perf_counter() - start
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)
    # A start that takes most of the wall clock (quick runs) leaves too little to rate the rest.
    steady = round(plan.total / (wall - startup), 3) if wall - startup > 0.3 * wall else None
    return {"pictures": plan.total, "batches": [b.units for b in plan.batches], "wall_s": round(wall, 2),
            "startup_s": round(startup, 2), "channels_per_s": round(plan.total / wall, 3),
            "steady_channels_per_s": steady}


def one_process(model, settings, batch_size: int) -> dict:
    channels = [(LAYER, c) for c in range(model.layers[LAYER].channels)]
    start = time.perf_counter()
    collect(render_channels(model, channels, settings, batch_size=batch_size))
    wall = time.perf_counter() - start
    return {"pictures": len(channels), "wall_s": round(wall, 2), "startup_s": 0.0,
            "channels_per_s": round(len(channels) / wall, 3), "steady_channels_per_s": round(len(channels) / wall, 3)}


def projection(model, settings, source) -> dict:
    """One batch per layer, in this process as the atlas renders it: seconds per picture by layer,
    times the layer's channels, summed."""
    layers, rows = atlas_layers(model), []
    for layer in layers:
        count = model.layers[layer].channels
        cap = min(count, max_batch(model, [layer], settings.size))
        plan = plan_atlas(model, [layer], settings, store=set(), batch_size=cap)  # an empty set: nothing cached
        plan.targets, plan.keys = plan.targets[:cap], plan.keys[:cap]  # the first batch
        plan.total = plan.todo
        start = time.perf_counter()
        run_atlas(source, model, plan, _NullStore(), progress=False)
        per_picture = (time.perf_counter() - start) / plan.todo
        rows.append({"layer": layer, "channels": count, "s_per_picture": round(per_picture, 3),
                     "layer_s": round(per_picture * count, 1)})
        print(f"  {layer:<12} {count:>5} channels  {per_picture:7.3f} s/picture  -> {per_picture * count:8.1f} s",
              flush=True)
    return {"layers": rows, "one_process_s": round(sum(r["layer_s"] for r in rows), 1),
            "channels": sum(r["channels"] for r in rows)}


class _NullStore:
    """Takes results and forgets them (the projection times rendering, not the cache)."""

    size_limit = 2**62

    def put(self, result) -> None:
        pass


def rows(model, settings, source, workers: list[int]) -> dict:
    import ray

    count = model.layers[LAYER].channels
    batch = even_batch_size(count, max_batch(model, [LAYER], settings.size))
    collect(render_channels(model, [(LAYER, 0)], settings.with_(steps=1)))  # warm up (lazy kernel set-up)
    threads = f"one process, {torch.get_num_threads()} threads (featviz render)"
    out = {threads: one_process(model, settings, batch)}
    print(f"  {threads}: {out[threads]}", flush=True)
    out["atlas, this process (1 thread)"] = timed_atlas(source, model, settings, batch)
    print(f"  atlas, this process: {out['atlas, this process (1 thread)']}", flush=True)
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        for k in workers:
            name = f"atlas, Ray {k} worker{'s' if k > 1 else ''}"
            out[name] = timed_atlas(source, model, settings, batch, ray="auto", workers=k)
            print(f"  {name}: {out[name]}", flush=True)
    finally:
        ray.shutdown()
    return out


def markdown(doc: dict) -> str:
    m, proj = doc["machine"], doc["projection"]
    base = doc["rows"]["atlas, this process (1 thread)"]["steady_channels_per_s"]
    lines = [f"Run on {doc['date']} with `{doc['command']}`: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, "
             f"device {m['device']}; load average at start {m['load_average'][0]}. Lite0 `{LAYER}` "
             f"({doc['rows']['atlas, this process (1 thread)']['pictures']} channels) at {doc['settings']}.", "",
             "| run | wall s | of which starting workers | channels / s | without the start "
             "| vs the atlas in one process |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in doc["rows"].items():
        steady = row["steady_channels_per_s"]
        lines.append(f"| {name} | {row['wall_s']} | {row['startup_s']} | {row['channels_per_s']} | {steady or '–'} | "
                     + (f"{steady / base:.2f}x |" if steady else "– |"))
    best = max(r["steady_channels_per_s"] or 0 for r in doc["rows"].values())
    lines += ["", f"The whole Lite0 atlas ({proj['channels']} channels, every listed layer but logits), "
              "projected from one "
              f"batch per layer: {proj['one_process_s'] / 3600:.2f} h in one process, "
              f"{proj['one_process_s'] * base / best / 3600:.2f} h at the fastest row's rate."]
    return "\n".join(lines)


def run(args) -> int:
    settings = RenderSettings(size=32, steps=2) if args.quick else RenderSettings()
    source = ModelSource("lite0", device="cpu")
    model = source.load()
    command = "python bench/atlas.py" + (" --quick" if args.quick else "")
    doc = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine("cpu"),
           "quick": args.quick, "command": command, "settings": f"{settings.size} px, {settings.steps} steps"}
    m = doc["machine"]
    print(f"atlas benchmark: {m['cpu']}, {m['cores']} cores, load {m['load_average']}", flush=True)
    doc["rows"] = rows(model, settings, source, [1, 2])
    print("projection (one batch per layer, this process):", flush=True)
    doc["projection"] = projection(model, settings, source)
    out = os.path.join(REPO, "out", "bench-quick") if args.quick else os.path.join(REPO, "bench")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "atlas_results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    text = markdown(doc)
    print(text)
    if not (args.quick or args.no_readme):
        update_readme(text, start=README_START, end=README_END, heading="## Atlas benchmark")
    return 0


def in_network_namespace(argv) -> int:
    """Run this script again inside `unshare -n` with loopback up and its own RAY_TMPDIR."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:
        print("bench/atlas.py starts Ray inside a network namespace of its own, which needs root (unshare -n); "
              "--no-netns runs Ray on this machine's network instead.", file=sys.stderr)
        return 2
    temp = tempfile.mkdtemp(prefix="fvb-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, NETNS_FLAG: "1", "RAY_TMPDIR": temp, "RAY_AUTH_MODE": "disabled"}
    try:
        return subprocess.run(["unshare", "-n", "bash", "-c", 'ip link set lo up; exec "$0" "$@"',
                               sys.executable, os.path.abspath(__file__), *argv], env=env).returncode
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="32 px, 2 steps: a smoke run; never touches README.md")
    p.add_argument("--no-readme", action="store_true", help="do not write the table into README.md")
    p.add_argument("--no-netns", action="store_true", help="run Ray on this machine's network (not inside unshare -n)")
    args = p.parse_args(argv)
    if not args.no_netns and os.environ.get(NETNS_FLAG) != "1":
        return in_network_namespace(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
