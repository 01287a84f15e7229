"""`featviz similarity --model lite0 [--model2 resnet18] [--layers a,b,c] [--layers2 ...] [--images DIR] --out s/`:
debiased linear CKA between layers over natural photos (or a folder's), as `s/similarity.json` ({"layers",
"layers2", "cka", "cka_ci": 95% intervals, "n": images, "photos", "method"}) and a heatmap `s/similarity.png`
(rows: --layers, columns: --layers2)."""
from __future__ import annotations

import io
import json
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import FeatvizError
from ..spec import SIZE_RANGE, check_whole, stage_layers
from ..store import Store
from ._common import OutputWriter, batch_arg, cache_args, images_arg, model_args, photo_set, ray_arg, writable_folder

# A perceptually ordered ramp (viridis' ends and middle): 0 dark blue, 1 yellow.
RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)
CELL = 34
METHOD = ("debiased linear CKA (unbiased HSIC, Song et al. 2012); cka_ci: 95% interval over half-samples of "
          "the photos without replacement")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("similarity", help="linear CKA between layers (of one model or two) on natural photos",
                              description="Layer-by-layer similarity (linear CKA). Bad input prints one line and "
                                          "exits with code 2.")
    model_args(p)
    p.add_argument("--layers", help="comma-separated layers (default: the model's stage layers, sub-blocks left out)")
    p.add_argument("--model2", help="a second model to compare with (default: the first)")
    p.add_argument("--weights2", help="local state-dict file for --model2")
    p.add_argument("--layers2", help="comma-separated layers of the second model (default: as --layers, or the "
                                     "second model's stage layers)")
    p.add_argument("--photo-size", type=int, help="pixels of the photos (default: the first model's input size)")
    images_arg(p)
    p.add_argument("--out", default="similarity", help="output folder (similarity.json, similarity.png)")
    batch_arg(p, "photos", default=16)
    ray_arg(p, "read the photos")
    cache_args(p)


def _layers(model, spec: str | None, fallback: list[str] | None = None) -> list[str]:
    if not spec:
        return fallback or stage_layers(model.layers)
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise FeatvizError(f"--layers {spec!r} names no layer: give a comma-separated list such as "
                           f"{','.join(stage_layers(model.layers)[:3])}.")
    return [model.resolve_layer(n) for n in names]


def _color(values: np.ndarray) -> np.ndarray:
    x = np.clip(values, 0, 1) * (len(RAMP) - 1)
    lo = np.minimum(x.astype(int), len(RAMP) - 2)
    t = (x - lo)[..., None]
    return (RAMP[lo] * (1 - t) + RAMP[lo + 1] * t).round().astype(np.uint8)


def heatmap(cka: list[list[float]], rows: list[str], columns: list[str]) -> Image.Image:
    """The matrix as coloured cells with their values, row labels on the left and column labels above."""
    font = ImageFont.load_default()
    values = np.asarray(cka, dtype=np.float64)
    left = 8 + 7 * max(len(r) for r in rows)
    top = 8 + 7 * max(len(c) for c in columns)
    image = Image.new("RGB", (left + CELL * len(columns) + 8, top + CELL * len(rows) + 8), "white")
    draw = ImageDraw.Draw(image)
    colors = _color(values)
    for i, row in enumerate(rows):
        draw.text((4, top + i * CELL + CELL // 2 - 5), row, fill="black", font=font)
        for j in range(len(columns)):
            x, y = left + j * CELL, top + i * CELL
            draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=tuple(int(v) for v in colors[i, j]))
            draw.text((x + 4, y + CELL // 2 - 5), f"{values[i, j]:.2f}", font=font,
                      fill="black" if values[i, j] > 0.6 else "white")
    for j, column in enumerate(columns):
        label = Image.new("RGB", (top - 4, CELL), "white")
        ImageDraw.Draw(label).text((2, CELL // 2 - 5), column, fill="black", font=font)
        image.paste(label.rotate(90, expand=True), (left + j * CELL, 2))
    return image


def _compute(args, model, model2, layers, layers2, store) -> dict:
    from tqdm import tqdm

    from ..analysis.similarity import cka_doc
    from ..backends.work import ModelSource

    photos = photo_set(args, args.photo_size or model.input_size)
    with tqdm(total=0, unit="image", desc="similarity", file=sys.stderr, dynamic_ncols=True) as bar:
        def done(n: int, more: int) -> None:
            bar.total += more
            bar.update(n)

        sources = [ModelSource(args.model, args.weights, args.device),
                   ModelSource(args.model2 or args.model, args.weights2, args.device)]
        return cka_doc(model, layers, photos, model2, layers2, batch=args.batch_size, store=store, done=done,
                       ray=args.ray, sources=sources)


def run(args) -> int:
    from ..models import load_model
    from ..spec import check_batch_size

    check_batch_size(args.batch_size)
    if args.ray:
        from ..backends.ray_actors import import_ray

        import_ray()  # before loading the model: say how to install Ray at once
    if args.photo_size is not None:
        check_whole("photo size", args.photo_size, SIZE_RANGE)
    writable_folder(args.out, "--out")
    store = None if args.no_cache else Store(args.cache)
    model = load_model(args.model, device=args.device, weights=args.weights)
    model2 = (load_model(args.model2 or args.model, device=args.device, weights=args.weights2)
              if args.model2 or args.weights2 else model)
    layers = _layers(model, args.layers)
    layers2 = _layers(model2, args.layers2, layers if model2 is model else None)
    result = _compute(args, model, model2, layers, layers2, store)
    doc = {"model": model.name, "model2": model2.name, "layers": layers, "layers2": layers2, **result,
           "method": METHOD}
    writer = OutputWriter(args.out, store is not None)
    print(f"wrote {writer.write('similarity.json', json.dumps(doc, indent=2))}: {len(layers)} x {len(layers2)} CKA "
          f"over {doc['n']} images of {doc['photos']} photos")
    buf = io.BytesIO()
    heatmap(doc["cka"], layers, layers2).save(buf, "PNG")
    print(f"wrote {writer.write('similarity.png', buf.getvalue())}")
    return 0
