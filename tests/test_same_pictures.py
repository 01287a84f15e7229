"""Code moves keep every picture: renders, dreams and an atlas (tests/picture_reference.py's cases) have
the cache keys they had, exactly, and the same frames and curves within tolerances measured across CPUs.

Bits are not compared: they depend on the instruction set torch, oneDNN and MKL pick (AVX2, AVX-512,
AMX) and on the thread count, and a few steps of the ascent on Lite0 amplify a last-bit difference into
whole gray levels. Measured by `python -m tests.picture_reference` (which also re-records), every case rendered
under each configuration below, in a fresh process, on an Intel Xeon with AVX-512 and AMX (torch 2.14.1);
the largest deviation from the reference run (this CPU, 1 thread) over all 37 pictures, as a frame's mean
absolute pixel difference (half resolution, gray levels 0-255) and a curve step's absolute difference
(share of the curve's largest magnitude):

    configuration (ATEN_CPU_CAPABILITY etc.)                  1 thread          2 threads
    this CPU (AVX-512, AMX)                                     0.00 / 0          6.20 / 2.27e-1
    ATen default                                                6.63 / 5.13e-1    7.11 / 1.58e-1
    ATen avx2                                                   0.00 / 0          6.20 / 2.27e-1
    ATen avx512                                                 0.00 / 0          6.20 / 2.27e-1
    baseline x86-64: ATen default, oneDNN SSE4.1, MKL SSE4.2    9.66 / 5.08e-1    9.66 / 5.08e-1
    AVX2 in ATen, oneDNN and MKL                                7.05 / 4.65e-1    7.23 / 2.41e-1
    (frames, gray levels / curves, share of scale; the largest over all pictures; algorithm version 5)

Version 5's NAdam at 0.1 climbs in fewer, larger steps and amplifies more than version 4's Adam at 0.05
did (1.53 / 4.97 gray levels in the rows above then): Lite0's blocks.4:3 now deviates by up to 5.9 gray
levels (2.0 then), its logit render by 9.7 (5.0). Adam at 0.1, or with a momentum of 0.5, amplifies in
between; the tiny model's pictures deviate by 0 either way.

The keys of all 37 pictures were the same under every configuration (once tests/tiny_model.py drew
its weights the same way on every CPU).

The tolerance is per case, per frame and per curve step: 3 (MARGIN) times the largest deviation measured
there, at least 0.5 gray levels and 1e-3 of the curve. Lite0's pictures after a few steps deviate most;
their early frames and the tiny model's pictures barely move, so a change of the render shows there:
the Fourier recipe's step 10 % longer exceeds the tolerance in all 8 Fourier cases (tiny and Lite0), 2 %
longer in 6 of them (not Lite0's blocks.4:3 and logit renders). The cache keys and frame steps are exact.
"""
from __future__ import annotations

import dataclasses

import pytest

from featviz_core import load_model
from featviz_core.inputs.photos import sample_photo
from featviz_core.optvis import render
from tests import picture_reference as reference

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def recorded() -> dict[str, dict]:
    return reference.load()


@pytest.fixture(scope="module")
def now(tmp_path_factory) -> dict[str, dict]:
    results = reference.gather(str(tmp_path_factory.mktemp("atlas")))
    return {name: reference.summary(r) for name, r in results.items()}


def test_the_same_pictures_have_the_same_cache_keys(recorded, now):
    assert sorted(now) == sorted(recorded)
    moved = {name: (str(now[name]["key"]), str(recorded[name]["key"])) for name in recorded
             if now[name]["key"] != recorded[name]["key"]}
    assert not moved, f"cache keys changed (new, recorded): {moved}"


def test_pictures_frames_and_curves_are_the_same_within_the_measured_tolerance(recorded, now):
    changed = {name: found for name in recorded if (found := reference.differences(recorded[name], now[name]))}
    assert not changed, f"pictures changed: {changed}"


def test_a_change_of_the_render_that_keeps_the_keys_is_reported(recorded, monkeypatch, single_thread):
    """Fourier's Adam step 10 % longer (a code change that leaves settings and keys alone): the tiny model's
    renders and Lite0's logit render (its noisiest case) are each reported as changed."""
    fourier = render.RECIPES["fourier"]
    monkeypatch.setitem(render.RECIPES, "fourier", dataclasses.replace(fourier, lr=fourier.lr * 1.1))
    lite0 = load_model("lite0", device="cpu")
    logit = [case for case in reference.LITE0_RENDERS if case[0] == "logit"]
    results = {**reference.renders(load_model(reference.TINY, device="cpu"), "tiny", reference.TINY_RENDERS),
               **reference.renders(lite0, "lite0", logit, sample_photo("chelsea"))}
    assert len(results) == 3
    for name, result in results.items():
        found = reference.differences(recorded[name], reference.summary(result))
        assert found and not found[0].startswith(("key", "steps")), (name, found)
