"""`python -m featviz_core dream photo.jpg --layer blocks.4 [--channel 12 | --logit 285] [--guide g.jpg] --out d.png`.

The whole photo is dreamed at its own shape, `--size` its longer side; before it starts, the time it
should take here is said (a measured step, per megapixel)."""
from __future__ import annotations

import os
import sys

from ..errors import FeatvizError
from ..inputs import MAX_BYTES, SAMPLE_PHOTOS, photo_digest, read_photo, sample_photo
from ..spec import check_batch_size, check_objective_layers
from ..spec.dream import DreamSettings, check_dream_size
from ..store import Store
from ._common import OutputWriter, batch_arg, cache_args, model_args


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("dream", help="Deep Dream a photo with a layer, a channel or a class logit",
                              description="Dream on a photo. Bad input prints one line and exits with code 2.")
    p.add_argument("photo", help=f"an image file, or a sample photo by name ({', '.join(SAMPLE_PHOTOS)})")
    model_args(p)
    default = DreamSettings()
    p.add_argument("--layer", action="append", help="layer name or alias (repeat for several; not with --logit)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--channel", type=int, help="raise one channel of the layer (default: the whole layer)")
    target.add_argument("--logit", type=int, help="raise a class logit (an ImageNet class index for lite0)")
    p.add_argument("--accentuate", type=float, default=0.0, metavar="STRENGTH",
                   help="feature accentuation: stay near the photo; a larger strength lets the feature show more "
                        "(e.g. 1)")
    p.add_argument("--guide", metavar="PHOTO", help="a guide photo (file or sample name): the layer's features grow "
                                                    "towards the guide's (whole-layer dreams)")
    p.add_argument("--out", default="dream.png", help="output PNG (with several layers: one file per layer, suffixed)")
    p.add_argument("--size", type=int, default=default.size,
                   help=f"the dream's longer side in pixels (default {default.size}); it keeps the photo's shape")
    p.add_argument("--steps", type=int, default=default.steps)
    p.add_argument("--octaves", type=int, default=default.octaves)
    p.add_argument("--seed", type=int, default=default.seed)
    batch_arg(p)
    cache_args(p)


def load_photo(source: str):
    """A file's photo, or a sample photo by name; the file's size is checked before it is read."""
    if not os.path.isfile(source):
        if source in SAMPLE_PHOTOS:
            return sample_photo(source)
        raise FeatvizError(f"No such photo file {source!r}; or name a sample photo: {', '.join(SAMPLE_PHOTOS)}.")
    if os.path.getsize(source) > MAX_BYTES:
        raise FeatvizError(f"{os.path.basename(source)} is over {MAX_BYTES // 2**20} MB: photos up to that size are "
                           "accepted.")
    with open(source, "rb") as f:
        return read_photo(f.read(), name=os.path.basename(source))


def _request(args) -> tuple[str, list[tuple[str | None, int | None]]]:
    if args.logit is not None:
        check_objective_layers("logit", args.layer or [])  # the one logit rule: --layer logits, or none
        return "logit", [(None, args.logit)]
    if not args.layer:
        raise FeatvizError("Name a layer to dream with (--layer blocks.4), or a class with --logit.")
    kind = "layer" if args.channel is None else "channel"
    return kind, [(layer, args.channel) for layer in args.layer]


def _out_path(out: str, label: str, several: bool) -> str:
    if not several:
        return out
    stem, ext = os.path.splitext(out)
    return f"{stem}_{label.replace(':', '_')}{ext or '.png'}"


def _dreams(model, photo, request, settings: DreamSettings, store, batch_size, guide=None) -> list:
    from tqdm import tqdm

    from ..jobs.dreams import dream_channels

    results = []
    with tqdm(total=1, unit="step", desc="dreaming", file=sys.stderr, dynamic_ncols=True) as bar:
        for event in dream_channels(model, photo, photo_digest(photo), request, settings, store, batch_size,
                                    guide=guide):
            bar.total = max(event.total_steps, 1)
            bar.n = event.done_steps if event.total_steps else 1
            bar.refresh()
            results += event.finished
    return results


def run(args) -> int:
    from ..jobs.dreams import dream_targets
    from ..models import load_model
    from ..optvis.dream import estimate_seconds

    kind, request = _request(args)
    check_batch_size(args.batch_size)
    settings = DreamSettings(size=args.size, steps=args.steps, octaves=args.octaves, seed=args.seed,
                             objective=kind, accentuate=args.accentuate)
    photo = load_photo(args.photo)
    guide = load_photo(args.guide) if args.guide else None
    settings = settings.with_(guide=photo_digest(guide) if guide is not None else None)
    height, width = check_dream_size(photo.shape, settings.size)
    model = load_model(args.model, device=args.device, weights=args.weights)
    targets = dream_targets(model, request, kind)  # bad layers and channels are said before the bar appears
    store = None if args.no_cache else Store(args.cache)
    seconds = estimate_seconds(model, photo.shape, targets, settings)
    print(f"dreaming {len(targets)} x {width} x {height} px, {settings.steps} steps: about {seconds:.0f} s here "
          "(less for what the cache has)", file=sys.stderr)
    results = _dreams(model, photo, request, settings, store, args.batch_size, guide)
    writer = OutputWriter(os.path.dirname(os.path.abspath(args.out)), store is not None)
    with writer.guard():
        os.makedirs(writer.folder, exist_ok=True)
    for result in results:
        path = writer.write(os.path.basename(_out_path(args.out, result.label, len(results) > 1)), result.png)
        origin = "from cache" if result.cached else f"{result.seconds:.1f} s"
        print(f"wrote {path}: {result.label} objective {result.curve[0]:.3g} -> {result.curve[-1]:.3g} ({origin})")
    return 0
