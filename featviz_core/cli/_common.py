"""What the subcommands share: the model and settings options, the checks of folders and batch sizes,
and the one writer of outputs (a full disk or a vanished folder is one line and exit 2, not a traceback)."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from typing import Iterator

from ..errors import FeatvizError
from ..models import DEFAULT_MODEL, list_models
from ..spec import BATCH_RANGE, INITS, METHODS, OBJECTIVES, PRECISIONS, RenderSettings, check_batch_size
from ..spec.settings import PHOTO

MAX_WORKERS = 1024  # Ray workers (atlas, exemplars)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (what is wrong, and where the valid ones are) and exit 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def prog() -> str:
    """`featviz` when run as the installed console script, else the module form."""
    return "featviz" if os.path.basename(sys.argv[0]) in ("featviz", "featviz.exe") else "python -m featviz_core"


def model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"registered name ({', '.join(list_models())}) or package.module:factory")
    p.add_argument("--weights", help="local state-dict file (torch.save(model.state_dict(), FILE))")
    p.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, mps")


def batch_arg(p: argparse.ArgumentParser, what: str = "pictures", default: int | None = None) -> None:
    """--batch-size, bounded the one way (spec.BATCH_RANGE; checked by `check_batch_size`)."""
    shown = "as many as fit in memory" if default is None else str(default)
    p.add_argument("--batch-size", type=int, default=default,
                   help=f"{what} per batch, {BATCH_RANGE[0]} to {BATCH_RANGE[1]} (default: {shown})")


def ray_arg(p: argparse.ArgumentParser, what: str) -> None:
    """--ray [ADDRESS], as `featviz atlas` has it: alone, a local Ray cluster; else an existing one."""
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help=f"{what} on a Ray actor: alone, a local cluster; or an existing one (ray://head:10001, auto)")


def images_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", metavar="DIR", help="measure on the photos of this folder (JPEG, PNG or WebP: the "
                                                   "first 1000 by path, each once) instead of the natural photos")


def photo_set(args: argparse.Namespace, size: int):
    """The photos a measurement runs on: --images' folder (checked now), else the natural photos."""
    from ..analysis.photoset import PhotoSet

    return PhotoSet.of_folder(args.images, size=size) if args.images else PhotoSet(size=size)


def cache_args(p: argparse.ArgumentParser, note: str = "") -> None:
    p.add_argument("--cache", help=f"cache folder (default: $FEATVIZ_CACHE, else ./cache{note})")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")


def settings_args(p: argparse.ArgumentParser, objective: bool = True, photo: bool = False) -> None:
    """The render settings' options (render, atlas; `photo`: --init photo too); `settings_from` reads them back."""
    default = RenderSettings()
    p.add_argument("--method", default=default.method, choices=METHODS)
    p.add_argument("--size", type=int, default=default.size)
    p.add_argument("--steps", type=int, default=default.steps)
    p.add_argument("--seed", type=int, default=default.seed)
    p.add_argument("--init", default=default.init, choices=INITS + (PHOTO,) if photo else INITS)
    if objective:
        p.add_argument("--objective", default=default.objective, choices=OBJECTIVES)
    p.add_argument("--precision", default=default.precision, choices=PRECISIONS,
                   help="bf16: autocast the model on a CUDA GPU (unverified quality; off by default)")


def settings_from(args: argparse.Namespace, photo: str = "") -> RenderSettings:
    """The settings the options name (checked by RenderSettings), and the batch size (check_batch_size);
    `photo`: the digest of the --init photo start."""
    check_batch_size(getattr(args, "batch_size", None))
    return RenderSettings(method=args.method, size=args.size, steps=args.steps, seed=args.seed, init=args.init,
                          objective=getattr(args, "objective", RenderSettings.objective), precision=args.precision,
                          photo=photo)


def check_workers(workers: int | None, ray) -> None:
    """--workers: how many Ray workers, 1 to MAX_WORKERS, and only with --ray."""
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise FeatvizError(f"--workers {workers} is out of range: use 1 to {MAX_WORKERS}.")
    if workers is not None and not ray:
        raise FeatvizError("--workers sets how many Ray workers render: add --ray (a local cluster) or --ray ADDRESS.")


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


class OutputWriter:
    """The one writer of a command's outputs into `folder`: counts what it wrote, and turns a full disk
    or a vanished folder into one FeatvizError naming the folder and what was written (exit 2)."""

    def __init__(self, folder: str, cached: bool = True):
        self.folder, self.cached, self.written = folder, cached, []

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def write(self, name: str, data: bytes | str) -> str:
        path = self.path(name)
        with self.guard(), open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        self.written.append(name)
        return path

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """OSError inside -> the one message (for writers that open their own files)."""
        try:
            yield
        except OSError as exc:
            raise self.failure(exc) from None

    def failure(self, exc: OSError) -> FeatvizError:
        return writing_failed(self.folder, exc, f"{len(self.written)} files written there"
                              + (f" (the last {self.written[-1]})" if self.written else ""), self.cached)


def writing_failed(folder: str, exc: OSError, written: str, cached: bool = True) -> FeatvizError:
    why = exc.strerror or type(exc).__name__
    again = ("everything finished is kept in the cache: make room (or recreate the folder) and run the same "
             "command again" if cached else "make room (or recreate the folder) and run the command again")
    return FeatvizError(f"Could not finish writing to {folder!r} ({why}): {written}; {again}.")


@contextlib.contextmanager
def writing_into(folder: str, cached: bool = True) -> Iterator[None]:
    """For outputs written elsewhere (the atlas's site, the exemplars' crops): the same one-line failure,
    counting the files the folder holds."""
    try:
        yield
    except OSError as exc:
        raise writing_failed(folder, exc, f"{_files_in(folder)} files are there now", cached) from None


def _files_in(folder: str) -> int:
    return sum(len(names) for _, _, names in os.walk(folder)) if os.path.isdir(folder) else 0
