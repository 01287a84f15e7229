"""Peak memory of one small dream of a W x H photo: `python -m tests.dream_memory W H` prints the
process's peak RSS before the dream (model and photo loaded) and after it, in bytes. Run in its own
process by tests/test_dream_whole.py (a peak RSS only ever rises)."""
from __future__ import annotations

import resource
import sys

import numpy as np
import torch


def main(width: int, height: int) -> None:
    from featviz_core import collect, load_model
    from featviz_core.inputs.photos import photo_digest
    from featviz_core.jobs.dreams import dream_channels
    from featviz_core.spec.dream import DreamSettings

    torch.set_num_threads(2)
    model = load_model("lite0", device="cpu")
    photo = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    digest = photo_digest(photo)
    settings = DreamSettings(size=max(width, height), steps=1, octaves=1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    collect(dream_channels(model, photo, digest, [("blocks.1", None)], settings, batch_size=1))
    print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
