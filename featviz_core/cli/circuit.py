"""`featviz circuit --model lite0 --layer blocks.5 --channel 17 [--from blocks.4] --top 8 --out c/`: which
channels of an earlier layer drive a channel and which channels of the next layer it drives (measured
on natural photos), as `c/circuit.json`, and a contact sheet of the channel's and its top inputs'
pictures (`c/circuit_sheet.png`, rendered with the render options through the cache)."""
from __future__ import annotations

import io
import json
import sys

from ..errors import FeatvizError
from ..spec import SIZE_RANGE, check_whole
from ..store import Store
from ._common import (
    OutputWriter,
    batch_arg,
    cache_args,
    images_arg,
    model_args,
    photo_set,
    ray_arg,
    settings_args,
    settings_from,
    writable_folder,
)

TOP_RANGE = (1, 64)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("circuit", help="which channels drive a channel, and which it drives",
                              description="A channel's circuit by gradient x activation on natural photos. "
                                          "Bad input prints one line and exits with code 2.")
    model_args(p)
    p.add_argument("--layer", required=True, help="layer name or alias")
    p.add_argument("--channel", type=int, required=True, help="channel of the layer")
    p.add_argument("--from", dest="source", help="the earlier layer it is fed from (default: the listed layer "
                                                 "just before --layer)")
    p.add_argument("--into", help="the later layer it feeds (default: the listed layer just after --layer)")
    p.add_argument("--top", type=int, default=8, help="channels in each top list and on the sheet (default 8)")
    p.add_argument("--photo-size", type=int, help="pixels of the natural photos measured on (default: the "
                                                  "model's input size)")
    images_arg(p)
    p.add_argument("--out", default="circuit", help="output folder (circuit.json, circuit_sheet.png)")
    p.add_argument("--no-sheet", action="store_true", help="write circuit.json only (render no pictures)")
    ray_arg(p, "measure")
    settings_args(p, objective=False)
    batch_arg(p)
    cache_args(p)


def _measure(model, args, store) -> dict:
    from tqdm import tqdm

    from ..analysis.circuits import circuit, circuit_work
    from ..backends.work import ModelSource

    photos = photo_set(args, args.photo_size or model.input_size)
    work = circuit_work(model, args.layer, args.channel, args.source, args.into, photos=photos)  # checks first
    with tqdm(total=work.units, unit="image", desc="circuit", file=sys.stderr, dynamic_ncols=True) as bar:
        doc = circuit(model, work.layer, work.channel, work.source, work.into, feeds=work.into is not None,
                      photos=photos, store=store, top=args.top, ray=args.ray,
                      model_source=ModelSource(args.model, args.weights, args.device))
        bar.update(work.units)
    return doc


def _sheet_targets(doc: dict, top: int) -> list[tuple[str, int]]:
    """The channel itself, then its `top` strongest inputs (either sign)."""
    return [(doc["layer"], doc["channel"])] + [(doc["from"], e["channel"]) for e in doc["inputs"][:top]]


def _sheet(model, targets, settings, store, batch_size) -> bytes:
    from tqdm import tqdm

    from ..export.sheets import contact_sheet
    from ..jobs.runner import render_channels

    by_label = {}
    with tqdm(total=1, unit="step", desc="rendering", file=sys.stderr, dynamic_ncols=True) as bar:
        for event in render_channels(model, targets, settings, store, batch_size):
            bar.total = max(event.total_steps, 1)
            bar.n = event.done_steps if event.total_steps else 1
            bar.refresh()
            by_label.update({r.label: r for r in event.finished})
    buf = io.BytesIO()
    contact_sheet([by_label[f"{layer}:{c}"] for layer, c in targets], columns=min(len(targets), 5)).save(buf, "PNG")
    return buf.getvalue()


def run(args) -> int:
    from ..models import load_model

    if not TOP_RANGE[0] <= args.top <= TOP_RANGE[1]:
        raise FeatvizError(f"--top {args.top} is out of range: choose a whole number from {TOP_RANGE[0]} to "
                           f"{TOP_RANGE[1]}.")
    if args.photo_size is not None:
        check_whole("photo size", args.photo_size, SIZE_RANGE)
    settings = settings_from(args)
    writable_folder(args.out, "--out")
    if args.ray:
        from ..backends.ray_actors import import_ray

        import_ray()  # before loading the model: say how to install Ray at once
    store = None if args.no_cache else Store(args.cache)
    model = load_model(args.model, device=args.device, weights=args.weights)
    doc = {"model": model.name, "digest": model.digest, **_measure(model, args, store)}
    writer = OutputWriter(args.out, store is not None)
    path = writer.write("circuit.json", json.dumps(doc, indent=2))
    print(f"wrote {path}: {doc['layer']}:{doc['channel']} from {doc['from']} "
          f"(top exciting {[e['channel'] for e in doc['exciting'][:5]]}, "
          f"top inhibiting {[e['channel'] for e in doc['inhibiting'][:5]]})")
    if not args.no_sheet:
        png = _sheet(model, _sheet_targets(doc, args.top), settings, store, args.batch_size)
        print(f"wrote {writer.write('circuit_sheet.png', png)}")
    return 0
