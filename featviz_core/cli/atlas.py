"""`python -m featviz_core atlas`: every channel of a model's layers, rendered into the cache (in this
process or on Ray workers), then written out as a static site (featviz_core/site.py).

    python -m featviz_core atlas --model lite0 --out atlas/                               # every listed layer
    python -m featviz_core atlas --model lite0 --layers blocks.1,blocks.5 --ray --out atlas/    # a local Ray cluster
    python -m featviz_core atlas --model vgg16 --weights vgg16.pth --ray ray://head:10001 --out atlas/
    python -m featviz_core atlas --model lite0 --layers blocks.3,blocks.5 --concepts 8 --out atlas/
"""
from __future__ import annotations

import argparse
import sys

from .. import config
from ..serving.queueing import usable_cores
from ..spec import check_whole
from ._common import (  # noqa: F401
    MAX_WORKERS,
    batch_arg,
    check_workers,
    model_args,
    settings_args,
    settings_from,
    writable_folder,
    writing_into,
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("atlas", help="render every channel of a model's layers (resumable; optionally on Ray) "
                                            "and write the atlas folder")
    model_args(p)
    p.add_argument("--layers", help="comma-separated layer names or aliases (default: every listed layer but logits)")
    p.add_argument("--out", default="atlas", help="output folder")
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="render on Ray actors: alone, a local cluster; or an existing one (ray://head:10001, auto)")
    p.add_argument("--workers", type=int, help="Ray actors (default: one per GPU, else one per CPU core)")
    p.add_argument("--dashboard-url", help="the dashboard's address, for links from each channel's page")
    settings_args(p, objective=False)  # an atlas is of channels
    batch_arg(p)
    p.add_argument("--cache", help="cache folder (default: $FEATVIZ_CACHE, else ./cache): the atlas lives there, "
                                   "and a killed run resumes from it")
    p.add_argument("--no-check", action="store_true",
                   help="skip the self-check (z-score, rank, neighbours per picture)")
    p.add_argument("--no-circuits", action="store_true",
                   help="skip each channel's Built from / Feeds into lists (one circuit per channel, 96 px photos)")
    p.add_argument("--concepts", type=int, default=0, metavar="K",
                   help="also learn K concepts per layer (dictionary learning on natural photos) and write a "
                        "concepts page per layer, linked from its channel pages (default: none)")


def _check(args: argparse.Namespace) -> None:
    check_workers(args.workers, args.ray)
    if args.concepts:
        from ..analysis.concepts import K_RANGE

        check_whole("concepts per layer (--concepts)", args.concepts, K_RANGE)  # before the renders, not after
    if args.ray:
        from ..backends.ray_actors import import_ray

        import_ray()  # before loading the model: say how to install Ray at once


def _room_for(store, need: float):
    """Without a cache size chosen by the user (FEATVIZ_CACHE_GB), an atlas bigger than the default
    budget gets a store whose limit fits it (and says so): the whole Lite0 atlas needs about 3.7 GB,
    and least-recently-used eviction would otherwise drop its first pictures while the last render."""
    if need <= store.size_limit or config.cache_gb_chosen():
        return store  # fits, or the user chose the budget: check_room holds them to it
    from ..store.disk import Store

    limit = int(1.2 * need)
    print(f"this atlas needs about {need / 2**30:.1f} GB of cache: the cache's limit is {limit / 2**30:.1f} GB "
          f"for this run (set FEATVIZ_CACHE_GB to choose another)", file=sys.stderr)
    directory = store.directory
    store.close()
    return Store(directory, size_limit=limit)


def run(args: argparse.Namespace) -> int:
    from ..backends.work import ModelSource
    from ..export.site import export_from_store
    from ..jobs.atlas import atlas_layers, check_room, estimated_entry_bytes, plan_atlas, run_atlas, workers_batching
    from ..models.loading import load_model
    from ..store.disk import Store

    _check(args)
    writable_folder(args.out, "--out")  # before hours of rendering, not after
    settings = settings_from(args)
    source = ModelSource(args.model, args.weights, args.device)
    # The driver's copy computes every key and plans the batches; workers load their own. A
    # cluster elsewhere may have GPUs the driver lacks: one of its workers measures the batches.
    remote = isinstance(args.ray, str)
    model = load_model(args.model, device="cpu" if remote else args.device, weights=args.weights)
    layers = atlas_layers(model, [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None)
    batching = workers_batching(source, layers, settings.size, args.ray) if remote and not args.batch_size else None
    store = Store(args.cache)
    try:
        plan = plan_atlas(model, layers, settings, store, args.batch_size, batching)
        store = _room_for(store, plan.total * estimated_entry_bytes(settings))
        check_room(store, plan, estimated_entry_bytes(settings))
        print(f"{model.name}: {plan.total} pictures in {len(layers)} layers, {plan.total - plan.todo} already in "
              f"the cache, {plan.todo} to render in {len(plan.batches)} batches"
              + (" on Ray" if args.ray else ""), file=sys.stderr)
        if not args.ray and model.device.type == "cpu" and plan.todo and usable_cores() > 1:
            print(f"rendering on one CPU core, so that every backend makes the same pictures: --ray renders on "
                  f"all {usable_cores()} (one single-threaded worker each)", file=sys.stderr)
        run_atlas(source, model, plan, store, args.ray, args.workers)
        with writing_into(args.out):
            index = export_from_store(args.out, model, settings, layers, store, args.dashboard_url,
                                      check=not args.no_check, circuits=not args.no_circuits,
                                      concepts=args.concepts)
    finally:
        store.close()
    print(f"wrote the atlas of {plan.total} pictures to {index}")
    return 0
