"""Code moves keep every picture: renders, dreams and an atlas (tests/picture_reference.py's cases) have
the cache keys they had, exactly, and the same frames and curves within tolerances measured across CPUs.

Bits are not compared: they depend on the instruction set torch, oneDNN and MKL pick (AVX2, AVX-512,
AMX) and on the thread count, and a few steps of Adam on Lite0 amplify a last-bit difference into whole
gray levels. Measured by `python -m tests.picture_reference` (which also re-records), every case rendered
under each configuration below, in a fresh process, on an Intel Xeon with AVX-512 and AMX (torch 2.14.1);
the largest deviation from the reference run (this CPU, 1 thread) over all 37 pictures, as a frame's mean
absolute pixel difference (half resolution, gray levels 0-255) and a curve step's absolute difference
(share of the curve's largest magnitude):

    configuration (ATEN_CPU_CAPABILITY etc.)                  1 thread          2 threads
    this CPU (AVX-512, AMX)                                     0.00 / 0          1.53 / 4.2e-2
    ATen default                                                1.53 / 4.2e-2     1.44 / 5.4e-2
    ATen avx2                                                   0.00 / 0          1.53 / 4.2e-2
    ATen avx512                                                 0.00 / 0          1.53 / 4.2e-2
    baseline x86-64: ATen default, oneDNN SSE4.1, MKL SSE4.2    4.97 / 1.45e-1    4.99 / 1.60e-1
    AVX2 in ATen, oneDNN and MKL                                1.83 / 1.76e-1    1.62 / 5.0e-2
    (frames, gray levels / curves, share of scale; the largest over all pictures)

The keys of all 37 pictures were the same under every configuration (once tests/tiny_model.py drew
its weights the same way on every CPU).

The tolerance is per case, per frame and per curve step: 3 (MARGIN) times the largest deviation measured
there, at least 0.5 gray levels and 1e-3 of the curve. Lite0's pictures after a few steps deviate most
(the logit render up to 5 gray levels at its last frame); their early frames and the tiny model's
pictures barely move (under 1e-5 of a curve), so a change of the render shows there: Fourier's Adam
step 10 % longer exceeds the tolerance in all 7 Fourier cases tried (by 2 to 76 times), 2 % longer in 5 of
them (not Lite0's neuron and logit renders). The cache keys and frame steps are exact.
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
