"""The whole photo: chelsea (451 x 300) dreamed at its own shape on the real Lite0, a guide photo, and
the memory of a large photo's dream (computed in tiles)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from featviz_core import collect, load_model
from featviz_core.inputs.photos import photo_digest, sample_photo
from featviz_core.jobs.dreams import dream_channels, dream_targets
from featviz_core.optvis import dream_tiles
from featviz_core.optvis.dream import objective_values, photo_batch
from featviz_core.spec.dream import DreamSettings, dream_shape

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def lite0():
    return load_model("lite0", device="cpu")


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]


def test_chelsea_whole_keeps_its_shape_and_still_looks_like_the_photo(lite0):
    photo = sample_photo("chelsea")
    settings = DreamSettings(size=451, steps=4, octaves=2)
    (result,) = collect(dream_channels(lite0, photo, photo_digest(photo), [("blocks.3", None)], settings))
    h, w = result.image.shape[:2]
    assert (h, w) == (300, 451) and abs(w * 300 / 451 - h) <= 1
    original = photo_batch(photo, 1, 3, (h, w))
    thumbs = [F.adaptive_avg_pool2d(x.mean(dim=1, keepdim=True), (h // 16, w // 16)).flatten()
              for x in (original, as_tensor(result.image))]
    assert float(torch.corrcoef(torch.stack(thumbs))[0, 1]) > 0.7
    targets = dream_targets(lite0, [("blocks.3", None)], "layer")
    assert float(objective_values(lite0, as_tensor(result.image), targets, "layer")) > float(
        objective_values(lite0, original, targets, "layer"))


def test_a_guide_raises_the_match_with_its_features(lite0):
    photo, guide = sample_photo("chelsea"), sample_photo("coffee")
    settings = DreamSettings(size=128, steps=10, octaves=2)
    request = [("blocks.3", None)]
    (plain,) = collect(dream_channels(lite0, photo, photo_digest(photo), request, settings))
    (guided,) = collect(dream_channels(lite0, photo, photo_digest(photo), request,
                                       settings.with_(guide=photo_digest(guide)), guide=guide))
    targets = dream_targets(lite0, request, "layer")
    features = dream_tiles.guide_features(lite0, guide, ["blocks.3"], 3)
    dots = [float(dream_tiles.guide_dot(lite0, as_tensor(r.image), targets, features)) for r in (plain, guided)]
    assert dots[1] > 1.1 * dots[0], dots
    assert guided.key != plain.key


def test_tiles_match_one_pass_in_their_objective():
    """The tiles' area-weighted score is the whole picture's score for a local objective (the mean)."""
    image = torch.rand(1, 3, 700, 1100)
    grad, score = dream_tiles.tiled_grad(image, lambda t: t.pow(2).mean(dim=(1, 2, 3)), (123, 456))
    assert torch.allclose(score, image.pow(2).mean(dim=(1, 2, 3)), rtol=1e-4)
    assert torch.allclose(grad * image.numel(), 2 * image, rtol=1e-3, atol=1e-4)
    assert dream_shape((300, 451, 3), 224) == (149, 224) and dream_shape((451, 300), 451) == (451, 300)


def peak_memory(width: int, height: int) -> tuple[int, int]:
    """(peak RSS with the model and photo loaded, peak RSS after the dream), bytes, in a fresh process."""
    out = subprocess.run([sys.executable, "-m", "tests.dream_memory", str(width), str(height)], capture_output=True,
                         text=True, timeout=300, check=True)
    before, after = out.stdout.split()[-2:]
    return int(before), int(after)


def test_a_large_photo_dreams_in_bounded_memory():
    """A 3000 x 2000 photo (9x the pixels) dreams within 1.5x the peak memory of a 1000 x 667 one: the
    activations are a tile's (untiled, they would take some GB), and what grows with the photo is only a
    few float copies of the picture itself (72 MB each)."""
    (small_before, small), (large_before, large) = peak_memory(1000, 667), peak_memory(3000, 2000)
    assert large < 1.5 * small, (small, large)
    picture = 3000 * 2000 * 3 * 4
    assert large - large_before < (small - small_before) + 6 * picture, (small - small_before, large - large_before)
