"""`python -m featviz_core exemplars`: the photos of a folder that excite each channel most."""
from __future__ import annotations

import argparse
import os
import sys

from ..analysis.exemplars import BATCH
from ..analysis.scan import SHARD
from ..errors import FeatvizError
from ..spec import check_batch_size
from ._common import batch_arg, cache_args, check_workers, model_args, writable_folder, writing_into

MAX_SHARD = 100_000


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("exemplars",
                              help="scan a folder of photos for each channel's top images (crops + exemplars.json)")
    model_args(p)
    p.add_argument("--images", required=True, help="folder of JPEG/PNG/WebP photos (searched recursively)")
    p.add_argument("--layers", required=True, help="comma-separated layer names or aliases, e.g. blocks.1,blocks.5")
    p.add_argument("--top", type=int, default=9, help="images kept per channel")
    p.add_argument("--out", default="ex", help="output folder (exemplars.json, crops/)")
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="scan shards on Ray workers: a local cluster, or ADDRESS (ray://host:port or auto)")
    p.add_argument("--workers", type=int, help="Ray workers (default: one per GPU, else per few CPU cores)")
    p.add_argument("--shard-size", type=int, default=SHARD,
                   help="images per shard (the unit of resuming and of Ray work)")
    batch_arg(p, "images", BATCH)
    cache_args(p, "; finished shards: a killed scan resumes from it")


def _check_sizes(args: argparse.Namespace) -> None:
    if not 1 <= args.shard_size <= MAX_SHARD:
        raise FeatvizError(f"--shard-size {args.shard_size} is out of range: use a positive number of images "
                           f"(at most {MAX_SHARD}).")
    check_batch_size(args.batch_size)
    check_workers(args.workers, True)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..analysis.exemplar_files import write_outputs
    from ..analysis.scan import scan_folder
    from ..models.loading import load_model
    from ..store.disk import Store

    _check_sizes(args)
    if not os.path.isdir(args.images):
        raise FeatvizError(f"Image folder {args.images!r} does not exist or is not a folder.")
    writable_folder(args.out, "--out")  # before the scan, not after it
    model = load_model(args.model, device=args.device, weights=args.weights)
    source = None
    if args.ray:
        from ..backends.work import ModelSource

        source = ModelSource(args.model, args.weights, args.device)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    store = None if args.no_cache else Store(args.cache)
    events = scan_folder(model, args.images, layers, args.top, store, args.shard_size, args.batch_size,
                         args.ray, args.workers, source)
    first = next(events)  # bad layers or folders are reported before a bar is drawn
    doc = first.result
    # initial=: images resumed from the store do not count towards the rate
    with tqdm(total=first.total, initial=first.done, unit="img", desc="scanning", file=sys.stderr,
              dynamic_ncols=True) as bar:
        for event in events:
            bar.update(event.done - bar.n)
            doc = event.result
    with writing_into(args.out, store is not None):
        crops = write_outputs(doc, os.path.realpath(args.images), args.out)
    skipped = sum(doc["skipped"].values())
    print(f"scanned {doc['images']} images ({skipped} files skipped: "
          f"{', '.join(f'{n} {r}' for r, n in doc['skipped'].items()) or 'none'}); "
          f"wrote {os.path.join(args.out, 'exemplars.json')} and {crops} crops")
    return 0
