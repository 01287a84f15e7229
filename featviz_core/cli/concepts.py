"""`featviz concepts --model lite0 --layer blocks.5 [--images DIR] [--k 12] [--method auto|nmf|sae] [--seed 0]
[--model2 NAME --layer2 LAYER] --out DIR`: a layer as the concepts it holds (dictionary learning over its
activations on photos), each pictured by the render loop and found in the photos.

Writes DIR/concepts.json, DIR/concept_N.png (the picture), DIR/concept_N_exJ.png (the photo crops where
it peaks), the sheet DIR/concepts.png, and with --model2 / --layer2 DIR/matches.json (the concepts of
the second layer, learned on the same photos, paired one to one with the first's)."""
from __future__ import annotations

import io
import json
import sys

import numpy as np
from PIL import Image

from ..errors import FeatvizError
from ..spec import RenderSettings, check_whole
from ..store import Store
from ._common import OutputWriter, batch_arg, cache_args, model_args, ray_arg, writable_folder

DEFAULT_SIZE, DEFAULT_STEPS = 128, 64  # a sheet of concepts in a few minutes on a CPU


def add_parser(subparsers) -> None:
    from ..analysis.concepts import METHODS

    p = subparsers.add_parser("concepts", help="a layer's concepts (NMF / sparse autoencoder over its activations), "
                                               "pictured and found in photos",
                              description="Dictionary learning over a layer's activations on photos. Bad input "
                                          "prints one line and exits with code 2.")
    model_args(p)
    p.add_argument("--layer", required=True, help="layer name or alias, e.g. blocks.5")
    p.add_argument("--images", help="folder of JPEG/PNG/WebP photos (default: the built-in photos and crops)")
    p.add_argument("--k", type=int, default=12, help="concepts to learn (default 12)")
    p.add_argument("--method", default="auto", choices=METHODS,
                   help="nmf (non-negative layers), sae (TopK sparse autoencoder, signed layers), auto: by the sign")
    p.add_argument("--seed", type=int, default=0, help="seed of the positions drawn, the learning and the pictures")
    p.add_argument("--model2", help="a second model whose --layer2 to match with (default: the first)")
    p.add_argument("--weights2", help="local state-dict file for --model2")
    p.add_argument("--layer2", help="a layer to match concepts with (of --model2, or of the same model)")
    p.add_argument("--top", type=int, default=6, help="photo crops per concept (default 6)")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"picture size (default {DEFAULT_SIZE})")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"render steps (default {DEFAULT_STEPS})")
    p.add_argument("--out", default="concepts", help="output folder")
    batch_arg(p)
    cache_args(p)
    ray_arg(p, "learn the concepts")


def _bar(desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=0, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True)


def _learn(model, layer: str, args, photos, store, desc: str, source=None) -> dict:
    from ..analysis.concepts import learn_concepts
    from ..backends.work import ModelSource

    with _bar(desc, "photo") as bar:
        def done(n: int, more: int) -> None:
            bar.total += more
            bar.update(n)

        source = source or ModelSource(args.model, args.weights, args.device)  # what a Ray worker loads
        return learn_concepts(model, layer, args.k, args.method, args.seed, photos, store, ray=args.ray, done=done,
                              source=source)


def _render(model, doc: dict, settings: RenderSettings, store, batch_size) -> dict[int, np.ndarray]:
    from ..analysis.concepts_render import render_concepts

    pictures = {}
    with _bar("rendering", "step") as bar:
        for event in render_concepts(model, doc, settings, store, batch_size=batch_size):
            bar.total = max(event.total_steps, 1)
            bar.n = event.done_steps if event.total_steps else 1
            bar.refresh()
            pictures.update({r.channel: r.image for r in event.finished})
    return pictures


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(buf, "PNG")
    return buf.getvalue()


def _check(args) -> RenderSettings:
    """Everything but the layers (which need the model), before any model is loaded."""
    from ..analysis.concepts import K_RANGE

    check_whole("concept count k", args.k, K_RANGE)
    check_whole("crops per concept (--top)", args.top, (0, 100))
    if args.model2 and not args.layer2:
        raise FeatvizError("--model2 needs --layer2: name the layer of the second model to match concepts with.")
    settings = RenderSettings(size=args.size, steps=args.steps, seed=args.seed)
    writable_folder(args.out, "--out")
    return settings


def _write_concepts(writer: OutputWriter, doc: dict, pictures, scores, found) -> list[str]:
    """The concept PNGs and their crops; returns each concept's sheet label."""
    labels = []
    for c, concept in enumerate(doc["concepts"]):
        writer.write(f"concept_{c}.png", _png(pictures[c]))
        names = [f"concept_{c}_ex{j}.png" for j in range(len(found[c]))]
        for name, exemplar in zip(names, found[c]):
            writer.write(name, _png(exemplar.crop))
        concept.update({"png": f"concept_{c}.png", "exemplars": names, "z": scores[c].z, "rank": scores[c].rank})
        labels.append(f"{c}: {concept['importance']:.0%} z {scores[c].z:.1f} #{scores[c].rank}")
    return labels


def run(args) -> int:
    from ..analysis.concepts_photos import folder_photos
    from ..analysis.concepts_render import concept_scores
    from ..analysis.concepts_where import concept_exemplars
    from ..export.concept_sheet import concept_sheet
    from ..models import load_model

    settings = _check(args)
    if args.ray:
        from ..backends.ray_actors import import_ray

        import_ray()  # before loading the model: say how to install Ray at once
    photos = folder_photos(args.images) if args.images is not None else None
    store = None if args.no_cache else Store(args.cache)
    model = load_model(args.model, device=args.device, weights=args.weights)
    doc = _learn(model, args.layer, args, photos, store, "learning")
    pictures = _render(model, doc, settings, store, args.batch_size)
    scores = concept_scores(model, doc, [pictures[c] for c in range(len(doc["concepts"]))], store=store)
    found = concept_exemplars(model, doc, photos, args.top, store) if args.top else [[] for _ in doc["concepts"]]
    writer = OutputWriter(args.out, store is not None)
    labels = _write_concepts(writer, doc, pictures, scores, found)
    sheet = concept_sheet([pictures[c] for c in range(len(labels))], [[e.crop for e in row] for row in found], labels)
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    writer.write("concepts.png", buf.getvalue())
    out = {key: doc[key] for key in ("model", "layer", "method", "k", "seed", "r2", "r2_over", "positions", "photos")}
    writer.write("concepts.json", json.dumps({**out, "concepts": doc["concepts"]}, indent=1))
    print(f"wrote {writer.path('concepts.json')}: {doc['k']} concepts of {doc['layer']} ({doc['method']}, "
          f"R^2 {doc['r2']:.2f} over {doc['positions']} positions), {len(writer.written)} files")
    if args.layer2:
        _match(args, model, doc, photos, store, writer)
    return 0


def _match(args, model, doc: dict, photos, store, writer: OutputWriter) -> None:
    from ..analysis.concepts_match import match_concepts
    from ..models import load_model

    model2 = (load_model(args.model2 or args.model, device=args.device, weights=args.weights2)
              if args.model2 or args.weights2 else model)
    from ..backends.work import ModelSource

    source2 = ModelSource(args.model2 or args.model, args.weights2 if args.model2 or args.weights2 else args.weights,
                          args.device)
    doc2 = _learn(model2, args.layer2, args, photos, store, "learning (2)", source2)
    match = match_concepts(model, doc, model2, doc2, photos)
    match.update({"model2": model2.name, "layer2": doc2["layer"], "method2": doc2["method"], "r2_2": doc2["r2"]})
    writer.write("matches.json", json.dumps(match, indent=1))
    print(f"wrote {writer.path('matches.json')}: {len(match['pairs'])} pairs, {len(match['unmatched'])} and "
          f"{len(match['unmatched2'])} unmatched (score < {match['threshold']})")
