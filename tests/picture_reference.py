"""A fixed set of renders, dreams and an atlas, and what tests/test_same_pictures.py compares them by:
each picture's cache key and frame steps (exactly), its evolution frames (the last is the final picture)
and its curve (within tolerances measured here).

Re-record after a change that is meant to change pictures (e.g. a new default render path):

    python -m tests.picture_reference      # 12 runs: about 10 minutes on 2 busy cores

It renders every case once per configuration in CONFIGS (instruction sets and torch thread counts),
each in a fresh process, and writes tests/data/picture_reference.npz: the plain run's summaries (frames
at half resolution, 2 x 2 means) and, per case, per frame and per curve step, MARGIN times the largest
deviation any configuration showed from it (at least FRAME_FLOOR and CURVE_FLOOR). It prints the
maxima per configuration: put them in tests/test_same_pictures.py's docstring.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from featviz_core import RenderSettings, collect, load_model, render_channels
from featviz_core.backends.work import ModelSource
from featviz_core.inputs.photos import photo_digest, sample_photo
from featviz_core.jobs.atlas import plan_atlas, run_atlas
from featviz_core.jobs.dreams import dream_channels
from featviz_core.spec.dream import DreamSettings
from featviz_core.store.disk import Store, png_array

REFERENCE = Path(__file__).parent / "data" / "picture_reference.npz"
_BASELINE = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}
_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
CONFIGS = {  # name: (environment, torch threads); the first is the reference; a CPU without an ISA uses its best
    **{f"{name}, {n} thread{'s' * (n > 1)}": (env, n) for n in (1, 2) for name, env in [
        ("this CPU", {}),
        ("ATen default", {"ATEN_CPU_CAPABILITY": "default"}),
        ("ATen avx2", {"ATEN_CPU_CAPABILITY": "avx2"}),
        ("ATen avx512", {"ATEN_CPU_CAPABILITY": "avx512"}),
        ("baseline x86-64: ATen default, oneDNN SSE4.1, MKL SSE4.2", _BASELINE),
        ("AVX2 in ATen, oneDNN and MKL", _AVX2)]},
}
MARGIN = 3  # the tolerance: this times the largest deviation measured (other CPUs, other libm)
FRAME_FLOOR = 0.5  # gray levels (0-255), mean over a frame's pixels: below rounding one level in two
CURVE_FLOOR = 1e-3  # of the curve's largest magnitude
TINY = "tests.tiny_model:make"
REFERENCE = Path(__file__).parent / "data" / "picture_reference.npz"
SMALL = RenderSettings(size=64, steps=6)
LITE0_RENDERS = [  # name, (layer, channel) pairs, settings[, "photo": starts from the sample photo]
    ("fourier", [("blocks.1", 0), ("blocks.1", 5), ("blocks.4", 3)], SMALL),
    ("maco", [("blocks.3", 2)], SMALL.with_(method="maco", seed=1)),
    ("classic", [("blocks.3", 2)], SMALL.with_(method="classic")),
    ("neuron", [("blocks.5", 7)], SMALL.with_(objective="neuron")),
    ("logit", [("logits", 1)], SMALL.with_(objective="logit")),
    ("photo", [("blocks.2", 4)], SMALL, "photo"),
]
TINY_RENDERS = [("fourier", [("relu2", 1), ("conv3", 4)], RenderSettings(size=32, steps=5))]
DREAMS = [("layer", [("blocks.2", None)], DreamSettings(size=64, steps=6, octaves=2)),
          ("channel", [("blocks.4", 3)], DreamSettings(size=64, steps=6, octaves=2, objective="channel")),
          ("accentuate", [("blocks.4", 3)], DreamSettings(size=64, steps=6, octaves=2, objective="channel",
                                                          accentuate=1.0))]


def renders(model, prefix: str, cases, photo=None) -> dict:
    """{"prefix:case:layer:channel": ChannelResult} of each case's render."""
    out = {}
    for name, layer_channels, settings, *start in cases:
        if start:
            settings = settings.with_(init="photo", photo=photo_digest(photo))
        for r in collect(render_channels(model, layer_channels, settings, photo=photo if start else None)):
            out[f"{prefix}:{name}:{r.layer}:{r.channel}"] = r
    return out


def dreams(model, photo, cases=DREAMS) -> dict:
    out = {}
    for name, layer_channels, settings in cases:
        for r in collect(dream_channels(model, photo, photo_digest(photo), layer_channels, settings)):
            out[f"dream:{name}:{r.layer}:{r.channel}"] = r
    return out


def atlas(folder: str) -> dict:
    model = load_model(TINY, device="cpu")
    store = Store(folder)
    try:
        plan = plan_atlas(model, ["relu1", "relu2"], RenderSettings(size=32, steps=4), store, batch_size=5)
        run_atlas(ModelSource(TINY, device="cpu"), model, plan, store, progress=False)
        return {f"atlas:{r.layer}:{r.channel}": r for r in (store.get(k) for k in plan.keys)}
    finally:
        store.close()


def gather(folder: str, threads: int = 1) -> dict:
    """Every case's result, by name, rendered with `threads` torch threads (the test suite uses one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        lite0, photo = load_model("lite0", device="cpu"), sample_photo("chelsea")
        out = renders(lite0, "lite0", LITE0_RENDERS, photo)
        out.update(renders(load_model(TINY, device="cpu"), "tiny", TINY_RENDERS))
        out.update(dreams(lite0, photo))
        out.update(atlas(folder))
        return dict(sorted(out.items()))
    finally:
        torch.set_num_threads(before)


def half(picture: np.ndarray) -> np.ndarray:
    """(..., H, W, C) uint8 -> 2 x 2 means, rounded (an odd last row or column dropped)."""
    h, w = picture.shape[-3] // 2, picture.shape[-2] // 2
    cut = picture[..., :2 * h, :2 * w, :].astype(np.float32)
    return np.rint(cut.reshape(*picture.shape[:-3], h, 2, w, 2, picture.shape[-1]).mean(axis=(-4, -2))).astype(np.uint8)


def summary(result) -> dict:
    """What is compared of one result: its key, frames (the last = the final picture), their steps, curve."""
    assert result.snapshots[-1][1] == result.png, "the last evolution frame is the final picture"
    return {"key": np.array(result.key), "frames": half(np.stack([png_array(png) for _, png in result.snapshots])),
            "steps": np.array([step for step, _ in result.snapshots]),
            "curve": np.array(result.curve, dtype=np.float32)}


def frame_deviations(reference: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Per frame: the mean absolute difference of its pixels, in gray levels."""
    return np.abs(reference.astype(np.float64) - frames.astype(np.float64)).mean(axis=(1, 2, 3))


def curve_deviations(reference: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Per step: the absolute difference, as a share of the reference curve's largest magnitude."""
    return np.abs(reference.astype(np.float64) - curve) / max(float(np.abs(reference).max()), 1e-12)


def mismatch(reference: dict, now: dict) -> str | None:
    """What differs of what must be exact: the key, the frames' steps, the frames' and the curve's shapes."""
    for part in ("key", "steps"):
        if not np.array_equal(reference[part], now[part]):
            return f"{part} {now[part].tolist()} instead of {reference[part].tolist()}"
    if reference["frames"].shape != now["frames"].shape or reference["curve"].shape != now["curve"].shape:
        return (f"frames {now['frames'].shape} and curve {now['curve'].shape} instead of "
                f"{reference['frames'].shape} and {reference['curve'].shape}")
    return None


def differences(reference: dict, now: dict) -> list[str]:
    """What of `now` (a summary) is not `reference` (a recorded summary, with its tolerances): [] if nothing."""
    if (exact := mismatch(reference, now)) is not None:
        return [exact]
    found = [f"frame of step {step}: mean |difference| {seen:.2f} gray levels > tolerance {tol:.2f}"
             for step, seen, tol in zip(now["steps"], frame_deviations(reference["frames"], now["frames"]),
                                        reference["frame_tolerance"]) if seen > tol]
    return found + [f"curve at step {step}: |difference| {seen:.2e} of its scale > tolerance {tol:.2e}"
                    for step, (seen, tol) in enumerate(zip(curve_deviations(reference["curve"], now["curve"]),
                                                           reference["curve_tolerance"]), 1) if seen > tol]


def load(path: Path = REFERENCE) -> dict[str, dict]:
    """{name: summary with its tolerances} as recorded."""
    out: dict[str, dict] = {}
    with np.load(path) as data:
        for flat in data.files:
            name, part = flat.split("|")
            out.setdefault(name, {})[part] = data[flat]
    return out


def _save(path, summaries: dict[str, dict]) -> None:
    np.savez_compressed(path, **{f"{name}|{part}": value for name, parts in summaries.items()
                                 for part, value in parts.items()})


def _run(env: dict, threads: int, out: Path) -> dict[str, dict]:
    """The summaries of every case rendered in a fresh process (an instruction set is chosen at start)."""
    subprocess.run([sys.executable, "-m", "tests.picture_reference", "--one", str(threads), str(out)], check=True,
                   cwd=Path(__file__).resolve().parent.parent, env={**os.environ, **env})
    return load(out)


def measure(folder: Path) -> dict[str, dict]:
    """Every configuration's run; the reference's summaries with their tolerances, and each configuration's
    largest deviations (printed)."""
    runs = {name: _run(env, threads, folder / f"{n}.npz") for n, (name, (env, threads)) in enumerate(CONFIGS.items())}
    reference = runs[next(iter(CONFIGS))]
    assert all(run.keys() == reference.keys() for run in runs.values())
    for name, parts in reference.items():
        for run in runs.values():
            assert mismatch(parts, run[name]) is None, (name, mismatch(parts, run[name]))
        parts["frame_tolerance"] = np.maximum(FRAME_FLOOR, MARGIN * np.max(
            [frame_deviations(parts["frames"], run[name]["frames"]) for run in runs.values()], axis=0))
        parts["curve_tolerance"] = np.maximum(CURVE_FLOOR, MARGIN * np.max(
            [curve_deviations(parts["curve"], run[name]["curve"]) for run in runs.values()], axis=0))
    for config, run in runs.items():
        frames = max(frame_deviations(reference[n]["frames"], run[n]["frames"]).max() for n in reference)
        curves = max(curve_deviations(reference[n]["curve"], run[n]["curve"]).max() for n in reference)
        print(f"{config}: frames {frames:.2f} gray levels, curves {curves:.2e}")
    return reference


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        with tempfile.TemporaryDirectory() as tmp:
            _save(sys.argv[3], {name: summary(r) for name, r in gather(tmp, int(sys.argv[2])).items()})
    else:
        with tempfile.TemporaryDirectory() as tmp:
            _save(REFERENCE, measure(Path(tmp)))
        print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size} bytes)")
