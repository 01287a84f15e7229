"""Self-check statistics on the tiny model (the real-model check is in test_real_lite0.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from featviz_core import RenderSettings, collect, load_model, render_channels
from featviz_core.analysis import selfcheck

from .conftest import count_forwards

pytestmark = pytest.mark.usefixtures("single_thread")


def test_natural_stats_are_cached_in_the_store(tiny, store):
    with count_forwards(tiny.module) as calls:
        first = selfcheck.natural_stats(tiny, "relu3", 32, store)
    assert len(calls) > 0
    assert first.median.shape == first.scale.shape == (16,) and (first.scale > 0).all()
    with count_forwards(tiny.module) as calls:
        second = selfcheck.natural_stats(tiny, "relu3", 32, store)
    assert calls == []
    np.testing.assert_allclose(second.median, first.median)
    np.testing.assert_allclose(second.scale, first.scale)
    # Another layer or size is another statistic.
    with count_forwards(tiny.module) as calls:
        other = selfcheck.natural_stats(tiny, "relu3", 48, store)
    assert len(calls) > 0 and not np.allclose(other.median, first.median)


def test_natural_stats_match_the_photos(tiny):
    """The median is the median of channel means over the photo crops (checked on a few channels)."""
    stats = selfcheck.natural_stats(tiny, "conv2", 32)
    crops = selfcheck._crops(32, 3)
    assert crops.shape == (len(selfcheck.NATURAL_PHOTOS) * selfcheck.CROPS_PER_PHOTO, 3, 32, 32)
    with torch.no_grad():
        x = tiny.normalize(crops)
        acts = tiny.module.conv2(tiny.module.relu1(tiny.module.conv1(x))).mean(dim=(-2, -1)).numpy()
    np.testing.assert_allclose(stats.median, np.median(acts, axis=0), rtol=1e-4, atol=1e-5)


def test_natural_photos_in_gray():
    photos = selfcheck.natural_photos(1)
    assert len(photos) == len(selfcheck.NATURAL_PHOTOS)
    assert all(p.ndim == 3 and p.shape[-1] == 1 and p.dtype == np.uint8 for p in photos)
    assert all(p.std() > 5 for p in photos)  # real pictures, not blank


def test_rendered_picture_beats_a_flat_one(tiny, store):
    settings = RenderSettings(size=32, steps=24)
    results = collect(render_channels(tiny, [("relu3", c) for c in range(3)], settings, store, batch_size=3))
    gray = np.full((32, 32, 3), 128, np.uint8)
    scores = selfcheck.score_pictures(tiny, [r.image for r in results] + [gray] * 3, "relu3", [0, 1, 2] * 2, store)
    for own, flat in zip(scores[:3], scores[3:]):
        assert own.channels == 16 and 1 <= own.rank <= 16
        assert own.z > flat.z and own.activation > flat.activation


def test_curve_z_uses_the_stats(tiny, store):
    stats = selfcheck.natural_stats(tiny, "relu3", 32, store)
    z = selfcheck.curve_z([stats.median[4], stats.median[4] + 2 * stats.scale[4]], stats, 4)
    np.testing.assert_allclose(z, [0.0, 2.0], atol=1e-9)


def test_gray_model_self_check(store):
    model = load_model("tests.tiny_model:make_gray", device="cpu")
    stats = selfcheck.natural_stats(model, "relu3", 32, store)
    assert stats.median.shape == (16,)
    pic = np.random.default_rng(0).integers(0, 256, (32, 32, 1), dtype=np.uint8)
    (score,) = selfcheck.score_pictures(model, [pic], "relu3", [0], store)
    assert np.isfinite(score.z) and score.channels == 16


def test_a_pictures_score_is_kept_once_for_the_atlas_and_the_dashboard(tiny, store, monkeypatch):
    """One key (picture key and STATS_VERSION) for the atlas's and the dashboard's self-check: a score
    either computed is the other's, and new statistics miss instead of serving a stale score."""
    results = collect(render_channels(tiny, [("relu3", 0), ("relu3", 1)], RenderSettings(size=32, steps=4), store))
    assert selfcheck.stored_scores(results, store) == [None, None]
    done = []
    with count_forwards(tiny.module) as calls:
        scores = selfcheck.picture_scores(tiny, "relu3", results, store, done.append)
    assert len(calls) > 0 and sum(done) == 2
    assert store.get_json(f"check:{selfcheck.STATS_VERSION}:{results[0].key}")["z"] == scores[0].z
    with count_forwards(tiny.module) as calls:
        again = selfcheck.picture_scores(tiny, "relu3", results, store)
    assert calls == [] and [(s.z, s.rank, s.layer_z) for s in again] == [(s.z, s.rank, s.layer_z) for s in scores]
    assert [s.z for s in selfcheck.stored_scores(results[1:], store)] == [scores[1].z]
    monkeypatch.setattr(selfcheck, "STATS_VERSION", selfcheck.STATS_VERSION + 1)
    assert selfcheck.stored_scores(results, store) == [None, None]
