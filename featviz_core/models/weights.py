"""Weight files, which may come from anyone: read without unpickling code, and refused before loading
when they would unpack to more memory than the architecture they are for could use."""
from __future__ import annotations

import os
import zipfile

import torch
from torch import nn

from ..errors import FeatvizError, megabytes

# Weight files: what they may unpack to (see load_state_dict_file).
WEIGHT_FILE_SLACK = 3  # times the architecture's own weight bytes
MAX_WEIGHT_FILE_BYTES = 4 * 2**30  # when no architecture is known
MAX_PICKLE_BYTES = 4 * 2**20  # the pickled index of names and shapes (tens of kB for real models)


def weights_limit(module: nn.Module | None) -> int:
    """The most bytes a weight file for `module` may unpack to: a few times its own weights (room for
    float64 copies and training-only heads), or an absolute cap when no architecture is known."""
    if module is None:
        return MAX_WEIGHT_FILE_BYTES
    own = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    return WEIGHT_FILE_SLACK * own + 2**20


def check_weight_file(path: str, limit: int) -> bool:
    """Refuses, before torch.load allocates anything, a file that would unpack to more than `limit`
    bytes: compressed zip entries (torch.save never compresses; a deflated entry can inflate a
    thousandfold), entries summing past the limit, an oversized pickle. Returns whether it is a zip
    (torch's own test: the local-header magic); an older non-zip file is raw bytes, bounded by its size."""
    name = os.path.basename(path)
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if not is_zip:
        if os.path.getsize(path) > limit:
            raise FeatvizError(f"Weights file {name!r} is {megabytes(os.path.getsize(path))}, more than this model "
                               f"can use ({megabytes(limit)}): refusing to read it.")
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FeatvizError(f"Weights file {name!r} is not a readable PyTorch state dict "
                           f"(a damaged zip: {exc}).") from None
    if any(e.compress_type != zipfile.ZIP_STORED or e.compress_size != e.file_size for e in entries):
        raise FeatvizError(f"Weights file {name!r} has compressed entries, which torch.save never writes and which "
                           "could unpack to any size: refusing to read it. Save it with "
                           "torch.save(model.state_dict(), FILE).")
    total, pickled = sum(e.file_size for e in entries), sum(e.file_size for e in entries if e.filename.endswith(".pkl"))
    if total > limit or pickled > MAX_PICKLE_BYTES:
        raise FeatvizError(f"Weights file {name!r} unpacks to {megabytes(total)} (its index {megabytes(pickled)}), "
                           f"more than this model can use ({megabytes(limit)}; an index of at most "
                           f"{megabytes(MAX_PICKLE_BYTES)}): refusing to read it.")
    return True


def load_state_dict_file(path: str, module: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Read a state dict for `module` safely: never unpickles arbitrary objects, and never unpacks more
    than `weights_limit(module)` bytes (checked before loading; tensors are then mapped from the file,
    not read, so their total is checked without allocating it). Messages name the file, not its
    folder: on a server the file is a visitor's upload and its place is nobody's business."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise FeatvizError(f"Weights file {name!r} does not exist (or is not a file).")
    limit = weights_limit(module)
    is_zip = check_weight_file(path, limit)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as exc:  # corrupt zip, pickled objects refused by weights_only, ...
        detail = str(exc)  # the folder out first, then cut: a cut path would no longer match
        for folder in {os.path.dirname(p) for p in (path, os.path.abspath(path), os.path.realpath(path))} - {""}:
            detail = detail.replace(folder, "…")
        detail = detail[:200]
        raise FeatvizError(f"Weights file {name!r} is not a readable PyTorch state dict "
                           f"({type(exc).__name__}: {detail}).") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FeatvizError(f"Weights file {name!r} does not hold a state dict (a mapping of names to tensors).")
    tensors = sum(t.numel() * t.element_size() for t in state.values())  # views count in full: the bound is on use
    if tensors > limit:
        raise FeatvizError(f"Weights file {name!r} holds {megabytes(tensors)} of tensors, more than this model can use "
                           f"({megabytes(limit)}): refusing it.")
    return state


def apply_state_dict(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """load_state_dict with a message that names the mismatch instead of a wall of keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} with wrong shapes (e.g. {k}: file {tuple(state[k].shape)}, "
                         f"model {tuple(own[k].shape)})")
        raise FeatvizError(f"Weights do not fit {what}: {'; '.join(parts)} keys.")
    module.load_state_dict(state)
