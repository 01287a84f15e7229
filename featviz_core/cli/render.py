"""`python -m featviz_core render`: channels to PNGs, a contact sheet and manifest.json in a folder.

    python -m featviz_core render --model lite0 --layer blocks.3 --channels 0-7 --out out/
    python -m featviz_core render --layer blocks.3 --init photo --photo chelsea --out out/   # start from a photo
"""
from __future__ import annotations

import argparse
import io
import json
import sys

from ..errors import FeatvizError
from ..inputs import photo_digest
from ..models import LOGITS, LoadedModel, load_model
from ..spec import DEFAULT_CHANNELS, RenderSettings, check_objective_layers, parse_channels
from ..spec.settings import PHOTO
from ..store import Store
from ._common import OutputWriter, batch_arg, cache_args, model_args, settings_args, settings_from, writable_folder

CHANNELS_HELP = (f"'0-15', '1,7,42', 'all', 'first 8' or 'random 8' (seeded by --seed; default {DEFAULT_CHANNELS!r}:"
                 " 0-7); class indices for --objective logit")


def add_parser(subparsers) -> None:
    render = subparsers.add_parser("render", help="render channels to PNGs, a contact sheet and manifest.json")
    model_args(render)
    render.add_argument("--layer", action="append", help="layer name or alias (repeat for several; "
                                                         f"with --objective logit: {LOGITS!r}, the default)")
    render.add_argument("--channels", default="0-7", help=CHANNELS_HELP)
    render.add_argument("--out", default="out", help="output folder")
    settings_args(render, photo=True)
    render.add_argument("--photo", help="with --init photo: the starting photo, an image file or a sample photo by "
                                        "name (e.g. chelsea)")
    batch_arg(render)
    cache_args(render)
    render.add_argument("--no-check", action="store_true", help="skip the self-check (z-score and rank per picture)")
    render.add_argument("--exemplars", help="an exemplar scan's folder: add each picture's activation over its "
                                            "channel's best photo")


def check_render_args(args) -> tuple[RenderSettings, Store | None]:
    """Everything about a render that can be checked without the model: settings, layers against the
    objective (the logit rule), batch size, and the output and cache folders (created and written to, so
    a bad place fails now, not after the render)."""
    if args.objective == "logit" and not args.layer:
        args.layer = [LOGITS]
    if not args.layer:
        raise FeatvizError("Name a layer to render (--layer blocks.3; repeat for several).")
    check_objective_layers(args.objective, args.layer)
    args.photo_pixels = start_photo(args)
    settings = settings_from(args, photo_digest(args.photo_pixels) if args.photo_pixels is not None else "")
    writable_folder(args.out, "--out")
    store = None if args.no_cache else Store(args.cache)
    for notice in store.notices if store is not None else []:
        print(f"warning: {notice}", file=sys.stderr)
    return settings, store


def start_photo(args):
    """The --init photo start's pixels (None for the other starts); --photo only with it."""
    from .dream import load_photo

    if (args.init == PHOTO) != bool(getattr(args, "photo", None)):
        raise FeatvizError("--init photo needs --photo FILE|NAME, and --photo needs --init photo.")
    return load_photo(args.photo) if args.init == PHOTO else None


def requested_channels(model: LoadedModel, layers: list[str], channels: str, seed: int) -> list[tuple[str, int]]:
    """(layer, channel) for every layer and every channel the list names (spec.parse_channels)."""
    requested = []
    for layer in layers:
        name = model.resolve_layer(layer)
        requested += [(name, c) for c in parse_channels(channels, model.info(name).channels, seed, name)]
    return requested


def render_all(model: LoadedModel, requested, settings: RenderSettings, store: Store | None, batch_size,
               photo=None) -> list:
    """The pictures in the requested order, with a progress bar on stderr."""
    from tqdm import tqdm

    from ..jobs.runner import render_channels

    by_label = {}
    with tqdm(total=1, unit="step", desc="rendering", file=sys.stderr, dynamic_ncols=True) as bar:
        for event in render_channels(model, requested, settings, store, batch_size, photo=photo):
            bar.total = max(event.total_steps, 1)
            bar.n = event.done_steps if event.total_steps else 1
            bar.refresh()
            by_label.update({r.label: r for r in event.finished})
    return [by_label[f"{layer}:{c}"] for layer, c in requested]


def checks(args, model: LoadedModel, results: list, store: Store | None) -> list[dict]:
    """Per picture: its self-check (z-score, rank) and, with --exemplars, its ratio to the best photo."""
    from ..analysis import exemplar_files, selfcheck

    scan = exemplar_files.scan_for_model(args.exemplars, model) if args.exemplars else None
    extras = [{} for _ in results]
    if not args.no_check:
        for layer in dict.fromkeys(r.layer for r in results):
            idx = [i for i, r in enumerate(results) if r.layer == layer]
            scores = selfcheck.score_pictures(model, [results[i].image for i in idx], layer,
                                              [results[i].channel for i in idx], store)
            for i, s in zip(idx, scores):
                extras[i] = {"z": round(s.z, 3), "rank": s.rank, "layer_channels": s.channels}
    if scan is not None:
        exemplar_files.add_ratios(model, scan, [(r.layer, r.channel, r.image) for r in results], extras)
    return extras


def write_render(out: str, model: LoadedModel, settings: RenderSettings, results: list, extras: list[dict],
                 cached: bool = True) -> dict:
    """The PNGs, contact_sheet.png and manifest.json, through the one writer; returns the manifest."""
    from ..export import sheets

    writer = OutputWriter(out, cached)
    for r in results:
        writer.write(sheets.png_name(r), r.png)
    sheet = io.BytesIO()
    sheets.contact_sheet(results).save(sheet, format="PNG")
    writer.write("contact_sheet.png", sheet.getvalue())
    doc = sheets.manifest(results, {**settings.__dict__}, {"name": model.name, "weights_digest": model.digest,
                                                           "device": str(model.device)}, extras)
    writer.write("manifest.json", json.dumps(doc, indent=2))
    return doc


def cmd_render(args, model: LoadedModel, settings: RenderSettings, store: Store | None) -> list[dict]:
    requested = requested_channels(model, args.layer, args.channels, settings.seed)
    results = render_all(model, requested, settings, store, args.batch_size, getattr(args, "photo_pixels", None))
    doc = write_render(args.out, model, settings, results, checks(args, model, results, store), store is not None)
    dead = [r.label for r in results if r.dead]
    cached = sum(r.cached for r in results)
    print(f"wrote {len(results)} pictures ({cached} from cache) + contact_sheet.png + manifest.json to {args.out}")
    if dead:
        print(f"dead channels (never excited above zero): {', '.join(dead)}")
    return doc["items"]


def run(args: argparse.Namespace) -> int:
    checked = check_render_args(args)
    model = load_model(args.model, device=args.device, weights=args.weights)
    cmd_render(args, model, *checked)
    return 0
