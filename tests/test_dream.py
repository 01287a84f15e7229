"""Deep Dream mechanics on the tiny model: it climbs its objective from the photo, is deterministic,
is the same alone or batched, goes through the store by a key of photo and settings, accentuation
stays nearer the photo, and the photo start of ordinary renders."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from featviz_core import FeatvizError, RenderSettings, collect, render_channels
from featviz_core.inputs.photos import photo_digest, sample_photo
from featviz_core.jobs.dreams import dream_channels, dream_targets
from featviz_core.optvis import param
from featviz_core.optvis.dream import dream, objective_values, photo_batch
from featviz_core.spec.dream import WHOLE_LAYER, DreamSettings, DreamSpec, dream_shape

from .conftest import count_forwards

pytestmark = pytest.mark.usefixtures("single_thread")

SETTINGS = DreamSettings(size=48, steps=12, octaves=2)


@pytest.fixture(scope="module")
def photo():
    return sample_photo("chelsea")[::4, ::4].copy()  # 75 x 113: small, and not square


def run(tiny, photo, request, settings=SETTINGS, store=None, batch_size=None):
    results = collect(dream_channels(tiny, photo, photo_digest(photo), request, settings, store, batch_size))
    return {r.label: r for r in results}


def whole(photo: np.ndarray, size: int) -> torch.Tensor:
    """The photo as a dream of it starts: whole, at its own shape, the longer side `size`."""
    return photo_batch(photo, 1, 3, dream_shape(photo.shape, size))


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]


@pytest.mark.parametrize("kind, request_", [("layer", [("relu2", None)]), ("channel", [("relu3", 4)]),
                                            ("logit", [(None, 3)])])
def test_each_objective_climbs_from_the_photo(tiny, photo, kind, request_):
    settings = SETTINGS.with_(objective=kind)
    (result,) = run(tiny, photo, request_, settings).values()
    targets = dream_targets(tiny, request_, kind)
    before = objective_values(tiny, whole(photo, settings.size), targets, kind)
    after = objective_values(tiny, as_tensor(result.image), targets, kind)
    assert float(after) > float(before) + 0.05 * abs(float(before)) + 1e-3
    assert len(result.curve) == settings.steps and result.snapshots[-1][0] == settings.steps
    if kind == "layer":
        assert result.channel == WHOLE_LAYER


def test_dream_starts_from_the_photo(tiny, photo):
    """The first snapshot is one small step from the photo, not from noise."""
    records = list(dream(tiny, photo, dream_targets(tiny, [("relu2", None)], "layer"), SETTINGS, snapshot_steps=[1]))
    first = records[0].snapshot[0]
    original = whole(photo, SETTINGS.size)[0]
    assert (first - original).abs().mean() < 0.03
    assert (records[-1].snapshot[0] - original).abs().mean() > (first - original).abs().mean()


def test_deterministic_and_same_alone_or_batched(tiny, photo):
    request = [("relu2", None), ("relu3", None), ("conv1", None)]
    batched = run(tiny, photo, request, batch_size=3)
    again = run(tiny, photo, request, batch_size=3)
    alone = run(tiny, photo, request[1:2], batch_size=1)
    assert [r.png for r in batched.values()] == [r.png for r in again.values()]
    label = "relu3"
    assert np.abs(alone[label].image.astype(int) - batched[label].image.astype(int)).max() <= 1
    other_seed = run(tiny, photo, request[1:2], SETTINGS.with_(seed=1))
    assert other_seed[label].png != batched[label].png


def test_cached_by_photo_and_every_setting(tiny, photo, store):
    request = [("relu2", None), ("relu3", None)]
    first = run(tiny, photo, request, store=store)
    with count_forwards(tiny.module) as calls:
        second = run(tiny, photo, request, store=store)
    assert calls == [] and all(r.cached for r in second.values())
    assert [r.png for r in second.values()] == [r.png for r in first.values()]
    # Another photo, or any other setting, is another key.
    spec = DreamSpec("tiny", "w", photo_digest(photo), "relu2", WHOLE_LAYER, SETTINGS)
    keys = {spec.key(), dataclasses.replace(spec, photo_digest="0" * 20).key()}
    for change in (dict(size=64), dict(steps=13), dict(octaves=3), dict(seed=2), dict(objective="channel"),
                   dict(accentuate=2.0), dict(guide="1" * 20), dict(guide="2" * 20)):
        keys.add(dataclasses.replace(spec, settings=SETTINGS.with_(**change)).key())
    assert len(keys) == 10 and {f.name for f in dataclasses.fields(DreamSettings)} == {
        "size", "steps", "octaves", "seed", "objective", "accentuate", "guide"}
    assert all(k.startswith("dream:") for k in keys)  # never collides with a render's key


def test_accentuation_stays_closer_to_the_photo(tiny, photo):
    request = [("relu3", 4)]
    plain = run(tiny, photo, request, SETTINGS.with_(objective="channel"))["relu3:4"].image
    mild = run(tiny, photo, request, SETTINGS.with_(objective="channel", accentuate=0.5))["relu3:4"].image
    strong = run(tiny, photo, request, SETTINGS.with_(objective="channel", accentuate=5.0))["relu3:4"].image
    original = (whole(photo, SETTINGS.size)[0].permute(1, 2, 0).numpy() * 255)

    def distance(image):
        return float(np.abs(image.astype(np.float32) - original).mean())
    assert distance(mild) < distance(strong) < distance(plain)


@pytest.mark.parametrize("request_, kind, words", [
    ([("nope", None)], "layer", "Unknown layer"),
    ([("relu3", 99)], "channel", "out of range"),
    ([(None, 10)], "logit", "out of range"),
    ([("logits", None)], "layer", "needs a layer"),
])
def test_bad_targets(tiny, photo, request_, kind, words):
    with pytest.raises(FeatvizError, match=words):
        run(tiny, photo, request_, SETTINGS.with_(objective=kind))


@pytest.mark.parametrize("change, words", [(dict(objective="dreamy"), "Unknown dream objective"),
                                           (dict(octaves=0), "Octaves"), (dict(accentuate=-1.0), "Accentuation")])
def test_bad_settings(change, words):
    with pytest.raises(FeatvizError, match=words):
        SETTINGS.with_(**change)


def test_a_dream_refuses_a_digest_that_is_not_its_photos(tiny, photo, store):
    """The digest names the photo in the cache keys: another photo's digest would store this photo's
    dreams where a visitor of the other photo finds them."""
    other = np.ascontiguousarray(photo[::-1])
    settings = DreamSettings(size=32, steps=2, octaves=1)
    with pytest.raises(FeatvizError, match="The photo to dream on is not the one its digest names"):
        collect(dream_channels(tiny, photo, photo_digest(other), [("relu2", None)], settings, store))
    with pytest.raises(FeatvizError, match="guide photo .* is not the one its digest names"):
        collect(dream_channels(tiny, photo, photo_digest(photo), [("relu2", None)],
                               settings.with_(guide=photo_digest(photo)), store, guide=other))
    assert len(store) == 0
    (dreamt,) = collect(dream_channels(tiny, photo, photo_digest(photo), [("relu2", None)], settings, store))
    assert store.get(dreamt.key) is not None


def test_channel_grown_from_a_photo(tiny, photo, store):
    settings = RenderSettings(size=48, steps=6, init="photo", photo=photo_digest(photo))
    (result,) = collect(render_channels(tiny, [("relu3", 2)], settings, store, photo=photo))
    (noise,) = collect(render_channels(tiny, [("relu3", 2)], settings.with_(init="noise", photo=""), store))
    original = param.photo_images(photo, 1, 3, 48)[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(result.image - original).mean() < np.abs(noise.image - original).mean() / 2
    assert result.key != noise.key
    with pytest.raises(FeatvizError, match="photo start is not the one its digest names"):
        collect(render_channels(tiny, [("relu3", 2)], settings, store, photo=photo[1:]))
    with pytest.raises(FeatvizError, match="needs a photo"):
        collect(render_channels(tiny, [("relu3", 2)], settings, store))
