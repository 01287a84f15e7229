"""Command line: `python -m featviz_core {models,layers,render,dashboard}` (installed: `featviz ...`). Bad input exits with code 2."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from typing import Sequence

from . import atlas as cli_atlas, dashboard as cli_dashboard, dream as cli_dream, exemplars as cli_exemplars
from ..analysis import exemplar_files
from ..errors import FeatvizError
from ..models.hooks import LOGITS
from ..models.loading import DEFAULT_MODEL, LoadedModel, list_models, load_model
from ..optvis.objectives import KINDS
from ..optvis.param import INITS
from ..jobs.runner import render_channels
from ..spec.settings import METHODS, PRECISIONS, RenderSettings
from ..store.disk import Store

MAX_CHANNELS_PER_RUN = 4096
# Subcommands with a module of their own: each has add_parser(subparsers) and run(args) -> exit code.
SUBCOMMANDS = {"atlas": cli_atlas, "dream": cli_dream, "exemplars": cli_exemplars, "dashboard": cli_dashboard}


def parse_channels(text: str, count: int) -> list[int]:
    """'0-15', '1,7,42', 'all' -> channel indices, each checked against the layer's `count` before a
    range is expanded (so '0-9999999999' fails at once instead of building the list)."""
    valid = f"the layer has {count} channels (0-{count - 1})"
    if text.strip() == "all":
        return list(range(count))
    channels: list[int] = []
    for part in text.split(","):
        span = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part.strip())
        if not span:
            raise FeatvizError(f"Cannot read channels {text!r}: use a list like '1,7,42', a range like '0-15', or 'all'; {valid}.")
        first, last = (_channel(digits, valid, count) for digits in (span.group(1), span.group(2) or span.group(1)))
        if last < first:
            raise FeatvizError(f"Channel range {part.strip()!r} runs backwards: write it as {last}-{first}.")
        channels.extend(range(first, last + 1))
        if len(channels) > MAX_CHANNELS_PER_RUN:
            raise FeatvizError(f"Too many channels in one run (at most {MAX_CHANNELS_PER_RUN}); {valid}.")
    return list(dict.fromkeys(channels))


def _channel(digits: str, valid: str, count: int) -> int:
    if len(digits) > 9 or int(digits) >= count:  # length first: int() of a huge string is itself slow
        raise FeatvizError(f"Channel {digits} is out of range: {valid}.")
    return int(digits)


def writable_folder(path: str, what: str) -> str:
    """Creates `path` if needed and proves it takes a file, before any work is done."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise FeatvizError(f"{what} {path!r} is a file, not a folder: give a folder (it is created if missing).")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise FeatvizError(f"{what} {path!r} cannot be written ({exc.strerror or type(exc).__name__}): give a folder "
                           "this user can write.") from None
    return path


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (what is wrong, and where the valid ones are) and exit 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"registered name ({', '.join(list_models())}) or package.module:factory")
    p.add_argument("--weights", help="local state-dict file (torch.save(model.state_dict(), FILE))")
    p.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, mps")


def _prog() -> str:
    """`featviz` when run as the installed console script, else the module form."""
    return "featviz" if os.path.basename(sys.argv[0]) in ("featviz", "featviz.exe") else "python -m featviz_core"


def settings_args(p: argparse.ArgumentParser, objective: bool = True) -> None:
    """The render settings' options (render, atlas); `settings_from` reads them back."""
    default = RenderSettings()
    p.add_argument("--method", default=default.method, choices=METHODS)
    p.add_argument("--size", type=int, default=default.size)
    p.add_argument("--steps", type=int, default=default.steps)
    p.add_argument("--seed", type=int, default=default.seed)
    p.add_argument("--init", default=default.init, choices=INITS)
    if objective:
        p.add_argument("--objective", default=default.objective, choices=KINDS)
    p.add_argument("--precision", default=default.precision, choices=PRECISIONS,
                   help="bf16: autocast the model on a CUDA GPU (unverified quality; off by default)")


def settings_from(args: argparse.Namespace) -> RenderSettings:
    return RenderSettings(method=args.method, size=args.size, steps=args.steps, seed=args.seed, init=args.init,
                          objective=getattr(args, "objective", RenderSettings.objective), precision=args.precision)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=_prog(), description="Feature visualization by activation maximization.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the registered models")
    layers = sub.add_parser("layers", help="list a model's visualizable layers")
    _model_args(layers)
    render = sub.add_parser("render", help="render channels to PNGs, a contact sheet and manifest.json")
    _model_args(render)
    render.add_argument("--layer", action="append", required=True, help="layer name or alias (repeat for several)")
    render.add_argument("--channels", default="0-7", help="'0-15', '1,7,42' or 'all' (class indices for --objective logit)")
    render.add_argument("--out", default="out", help="output folder")
    settings_args(render)
    render.add_argument("--batch-size", type=int, help="pictures per batch (default: as many as fit in memory)")
    render.add_argument("--cache", help="cache folder (default: $FEATVIZ_CACHE, else ./cache)")
    render.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    render.add_argument("--no-check", action="store_true", help="skip the self-check (z-score and rank per picture)")
    render.add_argument("--exemplars", help="an exemplar scan's folder: add each picture's activation over its channel's best photo")
    for command in SUBCOMMANDS.values():
        command.add_parser(sub)
    return parser


def cmd_models() -> None:
    for name, desc in list_models().items():
        print(f"{name:<10} {desc}")


def cmd_layers(model: LoadedModel) -> None:
    print(f"{model.name}  input {model.in_channels}x{model.input_size}x{model.input_size}  weights {model.digest}")
    print(f"{'layer':<14}{'alias':<14}{'channels':>9}  output")
    for info in model.layers.values():
        print(f"{info.name:<14}{info.alias:<14}{info.channels:>9}  {info.height}x{info.width}")


def check_render_args(args) -> tuple[RenderSettings, Store | None]:
    """Everything about a render that can be checked without the model: settings, batch size, and the
    output and cache folders (created and written to, so a bad place fails now, not after the render)."""
    if args.objective == "logit":
        args.layer = [LOGITS]
    settings = settings_from(args)
    if args.batch_size is not None and args.batch_size < 1:
        raise FeatvizError(f"--batch-size {args.batch_size} must be at least 1 (or left out: as many as fit in memory).")
    writable_folder(args.out, "--out")
    store = None if args.no_cache else Store(args.cache)
    for notice in store.notices if store is not None else []:
        print(f"warning: {notice}", file=sys.stderr)
    return settings, store


def cmd_render(args, model: LoadedModel, settings: RenderSettings, store: Store | None) -> list[dict]:
    from tqdm import tqdm

    from ..analysis import selfcheck
    from ..export import sheets

    requested = []
    for layer in args.layer:
        name = model.resolve_layer(layer)
        requested += [(name, c) for c in parse_channels(args.channels, model.layers[name].channels)]
    scan = exemplar_files.scan_for_model(args.exemplars, model) if args.exemplars else None
    by_label = {}
    with tqdm(total=1, unit="step", desc="rendering", file=sys.stderr, dynamic_ncols=True) as bar:
        for event in render_channels(model, requested, settings, store, args.batch_size):
            bar.total = max(event.total_steps, 1)
            bar.n = event.done_steps if event.total_steps else 1
            bar.refresh()
            by_label.update({r.label: r for r in event.finished})
    results = [by_label[f"{layer}:{c}"] for layer, c in requested]
    extras = [{} for _ in results]
    if not args.no_check:
        for layer in dict.fromkeys(r.layer for r in results):
            idx = [i for i, r in enumerate(results) if r.layer == layer]
            scores = selfcheck.score_pictures(model, [results[i].image for i in idx], layer, [results[i].channel for i in idx], store)
            for i, s in zip(idx, scores):
                extras[i] = {"z": round(s.z, 3), "rank": s.rank, "layer_channels": s.channels}
    if scan is not None:
        exemplar_files.add_ratios(model, scan, [(r.layer, r.channel, r.image) for r in results], extras)
    for r in results:
        with open(os.path.join(args.out, sheets.png_name(r)), "wb") as f:
            f.write(r.png)
    sheets.contact_sheet(results).save(os.path.join(args.out, "contact_sheet.png"))
    doc = sheets.manifest(results, {**settings.__dict__}, {"name": model.name, "weights_digest": model.digest,
                                                           "device": str(model.device)}, extras)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(doc, f, indent=2)
    dead = [r.label for r in results if r.dead]
    cached = sum(r.cached for r in results)
    print(f"wrote {len(results)} pictures ({cached} from cache) + contact_sheet.png + manifest.json to {args.out}")
    if dead:
        print(f"dead channels (never excited above zero): {', '.join(dead)}")
    return doc["items"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "pass_through", False):  # only `dashboard` hands its arguments on
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.streamlit_args = extra
    try:
        if getattr(args, "weights", None) and not os.path.isfile(args.weights):
            raise FeatvizError(f"--weights {args.weights!r} does not exist or is not a file.")
        if args.command in SUBCOMMANDS:
            return SUBCOMMANDS[args.command].run(args)
        if args.command == "models":
            cmd_models()
            return 0
        checked = check_render_args(args) if args.command == "render" else None
        model = load_model(args.model, device=args.device, weights=args.weights)
        if checked is None:
            cmd_layers(model)
        else:
            cmd_render(args, model, *checked)
        return 0
    except FeatvizError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever the message
        return 2
