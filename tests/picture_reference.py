"""A fixed set of renders, dreams and an atlas, hashed (PNG bytes, every evolution frame, curve):
tests/test_same_pictures.py asserts that code moves leave every picture the same, bit for bit.

    python -m tests.picture_hashes > tests/data/picture_hashes.json   # only when pictures change on purpose
"""
from __future__ import annotations

import hashlib
import json
import sys

import torch

from featviz_core import RenderSettings, collect, load_model, render_channels
from featviz_core.backends.work import ModelSource
from featviz_core.inputs.photos import photo_digest, sample_photo
from featviz_core.jobs.atlas import plan_atlas, run_atlas
from featviz_core.jobs.dreams import dream_channels
from featviz_core.spec.dream import DreamSettings
from featviz_core.store.disk import Store

TINY = "tests.tiny_model:make"


def digest(result) -> str:
    h = hashlib.sha256(result.png)
    h.update(result.key.encode())  # keys too: a moved rule must not orphan the cache
    for step, frame in result.snapshots:
        h.update(str(step).encode() + frame)
    h.update(json.dumps([round(v, 6) for v in result.curve]).encode())
    return h.hexdigest()[:24]


def renders(model, prefix: str, cases) -> dict[str, str]:
    out = {}
    for name, layer_channels, settings, *photo in cases:
        for r in collect(render_channels(model, layer_channels, settings, photo=photo[0] if photo else None)):
            out[f"{prefix}:{name}:{r.layer}:{r.channel}"] = digest(r)
    return out


def dreams(model, photo) -> dict[str, str]:
    out = {}
    cases = [("layer", [("blocks.2", None)], DreamSettings(size=64, steps=6, octaves=2)),
             ("channel", [("blocks.4", 3)], DreamSettings(size=64, steps=6, octaves=2, objective="channel")),
             ("accentuate", [("blocks.4", 3)], DreamSettings(size=64, steps=6, octaves=2, objective="channel",
                                                             accentuate=1.0))]
    for name, layer_channels, settings in cases:
        for r in collect(dream_channels(model, photo, photo_digest(photo), layer_channels, settings)):
            out[f"dream:{name}:{r.layer}:{r.channel}"] = digest(r)
    return out


def atlas(tmp: str) -> dict[str, str]:
    model = load_model(TINY)
    store = Store(tmp)
    settings = RenderSettings(size=32, steps=4)
    plan = plan_atlas(model, ["relu1", "relu2"], settings, store, batch_size=5)
    run_atlas(ModelSource(TINY), model, plan, store, progress=False)
    return {f"atlas:{key}": digest(store.get(key)) for keys in plan.keys for key in keys}


def all_hashes(tmp: str) -> dict[str, str]:
    torch.set_num_threads(1)  # a picture's bits depend on the thread count (workers.CPU_THREADS)
    lite0 = load_model("lite0", device="cpu")
    photo = sample_photo("chelsea")
    small = RenderSettings(size=64, steps=6)
    out = renders(lite0, "lite0", [
        ("fourier", [("blocks.1", 0), ("blocks.1", 5), ("blocks.4", 3)], small),
        ("maco", [("blocks.3", 2)], small.with_(method="maco", seed=1)),
        ("classic", [("blocks.3", 2)], small.with_(method="classic")),
        ("neuron", [("blocks.5", 7)], small.with_(objective="neuron")),
        ("logit", [("logits", 1)], small.with_(objective="logit")),
        ("photo", [("blocks.2", 4)], small.with_(init="photo", photo=photo_digest(photo)), photo),
    ])
    tiny_renders = [("fourier", [("relu2", 1), ("conv3", 4)], RenderSettings(size=32, steps=5))]
    out.update(renders(load_model(TINY), "tiny", tiny_renders))
    out.update(dreams(lite0, photo))
    out.update(atlas(tmp))
    return dict(sorted(out.items()))


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        json.dump(all_hashes(tmp), sys.stdout, indent=1)
        print()
