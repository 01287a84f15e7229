"""`python -m featviz_core atlas`: every channel of a model's layers, rendered into the cache (in this
process or on Ray workers), then written out as a folder.

    python -m featviz_core atlas --model lite0 --out atlas/                               # every listed layer
    python -m featviz_core atlas --model lite0 --layers blocks.1,blocks.5 --ray --out atlas/    # a local Ray cluster
    python -m featviz_core atlas --model vgg16 --weights vgg16.pth --ray ray://head:10001 --out atlas/
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import FeatvizError

MAX_WORKERS = 1024


def add_parser(subparsers) -> None:
    from .cli import _model_args
    from .param import INITS
    from .spec import METHODS, RenderSettings

    p = subparsers.add_parser("atlas", help="render every channel of a model's layers (resumable; optionally on Ray) "
                                            "and write the atlas folder")
    _model_args(p)
    default = RenderSettings()
    p.add_argument("--layers", help="comma-separated layer names or aliases (default: every listed layer but logits)")
    p.add_argument("--out", default="atlas", help="output folder")
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="render on Ray actors: alone, a local cluster; or an existing one (ray://head:10001, auto)")
    p.add_argument("--workers", type=int, help="Ray actors (default: one per GPU, else one per CPU core)")
    p.add_argument("--dashboard-url", help="the dashboard's address, for links from each channel's page")
    p.add_argument("--method", default=default.method, choices=METHODS)
    p.add_argument("--size", type=int, default=default.size)
    p.add_argument("--steps", type=int, default=default.steps)
    p.add_argument("--seed", type=int, default=default.seed)
    p.add_argument("--init", default=default.init, choices=INITS)
    p.add_argument("--batch-size", type=int, help="pictures per batch (default: as many as fit in the driver's memory; "
                                                  "set it for GPU workers when the driver has no GPU)")
    p.add_argument("--cache", help="cache folder (default: $FEATVIZ_CACHE, else ./cache): the atlas lives there, "
                                   "and a killed run resumes from it")


def _check(args: argparse.Namespace) -> None:
    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise FeatvizError(f"--workers {args.workers} is out of range: use 1 to {MAX_WORKERS}.")
    if args.batch_size is not None and not 1 <= args.batch_size <= 4096:
        raise FeatvizError(f"--batch-size {args.batch_size} is out of range: use 1 to 4096.")
    if args.ray:
        from .ray_backend import import_ray

        import_ray()  # before loading the model: say how to install Ray at once


def run(args: argparse.Namespace) -> int:
    from .atlas import atlas_layers, plan_atlas, run_atlas
    from .models import load_model
    from .spec import RenderSettings
    from .store import Store
    from .workers import ModelSource

    try:
        _check(args)
        settings = RenderSettings(method=args.method, size=args.size, steps=args.steps, seed=args.seed, init=args.init)
        source = ModelSource(args.model, args.weights, args.device)
        # The driver's copy plans the batches and computes every key; Ray workers load their own.
        model = load_model(args.model, device="cpu" if args.ray else args.device, weights=args.weights)
        layers = atlas_layers(model, [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None)
        store = Store(args.cache) if args.cache else Store()
        try:
            plan = plan_atlas(model, layers, settings, store, args.batch_size)
            print(f"{model.name}: {plan.total} pictures in {len(layers)} layers, {plan.total - plan.todo} already in "
                  f"the cache, {plan.todo} to render in {len(plan.batches)} batches"
                  + (" on Ray" if args.ray else ""), file=sys.stderr)
            run_atlas(source, model, plan, store, args.ray, args.workers)
            index = write_atlas(args.out, model, layers, settings, store, args.dashboard_url)
        finally:
            store.close()
        print(f"wrote the atlas of {plan.total} pictures to {index}")
        return 0
    except FeatvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def write_atlas(out: str, model, layers, settings, store, dashboard_url: str | None) -> str:
    """The static site when featviz_core.site is there; otherwise each picture as a PNG and a
    manifest.json (one entry per channel, read from the store one at a time)."""
    from . import sheets
    from .atlas import atlas_keys

    try:
        from .site import export_from_store
    except ImportError:
        export_from_store = None
    if export_from_store is not None:
        return export_from_store(out, model, layers, settings, store, dashboard_url=dashboard_url)
    os.makedirs(os.path.join(out, "pictures"), exist_ok=True)
    items = []
    for _target, key in atlas_keys(model, layers, settings):
        result = store.get(key)
        if result is None:  # evicted since it was rendered: the cache is too small for the atlas
            raise FeatvizError("A picture left the cache before the atlas was written: raise FEATVIZ_CACHE_GB and run again.")
        with open(os.path.join(out, "pictures", sheets.png_name(result)), "wb") as f:
            f.write(result.png)
        items.append(sheets.manifest_item(result, png=f"pictures/{sheets.png_name(result)}"))
    doc = {"model": {"name": model.name, "weights_digest": model.digest}, "settings": dict(settings.__dict__),
           "layers": {name: model.layers[name].channels for name in layers}, "dashboard_url": dashboard_url,
           "items": items}
    path = os.path.join(out, "manifest.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return path
