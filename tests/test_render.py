"""The render loop on the tiny CNN: ascent works for every method, is reproducible, batching does not
change pictures, dead and NaN channels are reported, objectives compose, settings and specs behave."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from featviz_core import (
    FeatvizError,
    RenderSettings,
    RenderSpec,
    Target,
    collect,
    load_model,
    parse_target,
    render_channels,
)
from featviz_core.jobs.batching import snapshot_steps
from featviz_core.models.hooks import LOGITS, LayerTap
from featviz_core.optvis import objectives
from featviz_core.optvis.render import render
from featviz_core.spec.settings import ALGORITHM_VERSION, METHODS

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL = dict(size=32, steps=16)
CHANNELS = [("relu3", c) for c in range(4)]


def _images(results):
    return [r.image.astype(np.int16) for r in results]


def _activation(model, images: torch.Tensor, target: Target) -> torch.Tensor:
    """Mean activation of the target channel on untransformed pictures in [0, 1]."""
    with torch.no_grad(), LayerTap(model.module, [target.layer]) as tap:
        return tap.run(model.normalize(images))[target.layer][:, target.channel].mean(dim=(-2, -1))


@pytest.mark.parametrize("method", METHODS)
def test_curves_rise_for_every_channel(tiny, method):
    settings = RenderSettings(method=method, **SMALL)
    results = collect(render_channels(tiny, CHANNELS, settings, batch_size=4))
    assert [(r.layer, r.channel) for r in results] == CHANNELS
    for r in results:
        assert len(r.curve) == settings.steps
        assert r.curve[-1] > r.curve[0] * 1.2 + 1e-3, (r.label, r.curve[0], r.curve[-1])
        assert not r.dead
        assert r.image.shape == (32, 32, 3) and r.image.dtype == np.uint8


def test_same_seed_same_bytes_other_seed_other_picture(tiny):
    settings = RenderSettings(**SMALL)
    first = collect(render_channels(tiny, CHANNELS[:2], settings, batch_size=2))
    again = collect(render_channels(tiny, CHANNELS[:2], settings, batch_size=2))
    other = collect(render_channels(tiny, CHANNELS[:2], settings.with_(seed=1), batch_size=2))
    for a, b, c in zip(first, again, other):
        assert a.png == b.png and a.curve == b.curve
        assert [p for _, p in a.snapshots] == [p for _, p in b.snapshots]
        assert a.png != c.png
        assert np.abs(a.image.astype(int) - c.image.astype(int)).mean() > 1.0


@pytest.mark.filterwarnings("ignore:TF32 acceleration")
@pytest.mark.parametrize("method", METHODS)
def test_batched_pictures_equal_one_by_one(tiny, method):
    """Each picture draws its randomness from its own generator and gets its own objective term, so
    a batch must give the pictures rendering alone gives. oneDNN picks convolution kernels by batch
    size (float rounding differs by ~1e-7, which ReLU kinks and the optimizer's gradient
    normalization amplify over steps), so compare with the native convolution, which is per-sample. ATen's baseline
    kernels (ATEN_CPU_CAPABILITY=default, a CPU without AVX2) still round by batch size: measured over
    these 15 pictures, one MaCo picture (relu3:1) drifts from step 4 on, to a mean difference of 3.1
    grey levels (max 18) and 0.7% of its curve's scale; with AVX2 and AVX-512 kernels every picture is
    equal. So: the first steps tightly (shared randomness or objectives would part them at once), the
    whole curve and picture within what that drift reaches."""
    settings = RenderSettings(method=method, **SMALL)
    targets = CHANNELS + [("conv2", 5)]
    with torch.backends.mkldnn.flags(enabled=False):
        batched = collect(render_channels(tiny, targets, settings, batch_size=len(targets)))
        alone = collect(render_channels(tiny, targets, settings, batch_size=1))
    key = lambda r: (r.layer, r.channel)  # noqa: E731
    batched, alone = sorted(batched, key=key), sorted(alone, key=key)
    for a, b in zip(batched, alone):
        assert key(a) == key(b)
        diff = np.abs(a.image.astype(int) - b.image.astype(int)).mean()
        assert diff <= 4, f"{a.label}: mean pixel difference {diff:.2f} between batched and alone"
        np.testing.assert_allclose(a.curve[:3], b.curve[:3], rtol=1e-4, atol=1e-6)
        drift = np.abs(np.subtract(a.curve, b.curve)).max() / max(np.abs(b.curve).max(), 1e-6)
        assert drift <= 0.02, f"{a.label}: curves part by {drift:.1%} of their scale"
    # Sanity: the pictures of a batch are not all the same picture.
    assert len({r.png for r in batched}) == len(batched)


def test_dead_channel_is_flagged():
    model = load_model("tests.tiny_model:make_dead", device="cpu")
    dead, alive = collect(render_channels(model, [("relu3", 0), ("relu3", 1)], RenderSettings(**SMALL), batch_size=2))
    assert dead.channel == 0 and dead.dead and max(dead.curve) == 0.0
    assert alive.channel == 1 and not alive.dead and max(alive.curve) > 0


def test_nan_activation_raises():
    model = load_model("tests.tiny_model:make_nan", device="cpu")
    with pytest.raises(FeatvizError, match="NaN") as err:
        collect(render_channels(model, [("relu3", 2)], RenderSettings(size=32, steps=4), batch_size=1))
    assert "relu3:2" in str(err.value) and "step 1" in str(err.value)


def test_grayscale_model_renders_one_channel_pictures():
    model = load_model("tests.tiny_model:make_gray", device="cpu")
    results = collect(render_channels(model, [("relu3", 0), ("relu3", 1)], RenderSettings(size=32, steps=12),
                                      batch_size=2))
    for r in results:
        assert r.image.shape == (32, 32, 1)
        assert r.curve[-1] > r.curve[0]


# ---------------------------------------------------------------- objectives

def test_objective_arithmetic():
    g = torch.Generator().manual_seed(0)
    acts = {"relu3": torch.rand(2, 16, 5, 5, generator=g), "conv2": torch.randn(2, 16, 5, 5, generator=g)}
    a = objectives.channel([Target("relu3", 1), Target("relu3", 2)])
    b = objectives.neuron([Target("conv2", 3), Target("conv2", 4)])
    want_a = torch.stack([acts["relu3"][0, 1].mean(), acts["relu3"][1, 2].mean()])
    want_b = torch.stack([acts["conv2"][0, 3, 2, 2], acts["conv2"][1, 4, 2, 2]])
    torch.testing.assert_close(a(acts), want_a)
    torch.testing.assert_close(b(acts), want_b)
    torch.testing.assert_close((a + b)(acts), want_a + want_b)
    torch.testing.assert_close((a - b)(acts), want_a - want_b)
    torch.testing.assert_close((2.5 * a)(acts), 2.5 * want_a)
    torch.testing.assert_close((a * -2)(acts), -2 * want_a)
    torch.testing.assert_close((-a)(acts), -want_a)
    assert (a + b).layers == ("relu3", "conv2") and (a - b).layers == ("relu3", "conv2")
    assert (a + a).layers == ("relu3",)


def test_mixed_layer_batch_objective_scores_each_element_on_its_own_layer():
    acts = {"relu3": torch.rand(3, 16, 4, 4), "conv2": torch.rand(3, 16, 4, 4)}
    obj = objectives.channel([Target("relu3", 0), Target("conv2", 7), Target("relu3", 9)])
    want = torch.stack([acts["relu3"][0, 0].mean(), acts["conv2"][1, 7].mean(), acts["relu3"][2, 9].mean()])
    torch.testing.assert_close(obj(acts), want)


def test_negative_objective_makes_the_activation_fall(tiny):
    settings = RenderSettings(**SMALL)
    targets = [Target("conv3", 0), Target("conv3", 1)]

    def final_and_first(objective):
        records = list(render(tiny, targets, settings, snapshot_steps=[1], objective=objective))
        return records[0], records[-1]

    up_first, up_last = final_and_first(objectives.channel(targets))
    down_first, down_last = final_and_first(-objectives.channel(targets))
    # The loop climbs whatever it is given: the negated activation rises, so the activation falls.
    assert (down_last.scores > down_first.scores).all()
    assert (up_last.scores > up_first.scores).all()
    # Measured independently on the untransformed pictures.
    for b, t in enumerate(targets):
        start = _activation(tiny, down_first.snapshot[b:b + 1], t)
        fell = _activation(tiny, down_last.snapshot[b:b + 1], t)
        rose = _activation(tiny, up_last.snapshot[b:b + 1], t)
        assert fell < start < rose, (t, float(fell), float(start), float(rose))


def test_logit_objective(tiny):
    with pytest.raises(FeatvizError, match="logit"):
        collect(render_channels(tiny, [("relu3", 0)], RenderSettings(objective="logit", **SMALL)))
    (r,) = collect(render_channels(tiny, [(LOGITS, 3)], RenderSettings(objective="logit", **SMALL), batch_size=1))
    assert r.layer == LOGITS and r.curve[-1] > r.curve[0]


def test_parse_target():
    assert parse_target("blocks.3:5") == (Target("blocks.3", 5), 1.0)
    assert parse_target("-blocks.3:5") == (Target("blocks.3", 5), -1.0)
    assert parse_target("logits:285") == (Target(LOGITS, 285), 1.0)
    assert str(parse_target("blocks.3:5")[0]) == "blocks.3:5"
    for bad in ("blocks.3", "blocks.3:", ":5", "blocks.3:x", "blocks.3:-1", ""):
        with pytest.raises(FeatvizError, match="layer:channel"):
            parse_target(bad)


def test_parse_target_superscript_digit_is_a_featviz_error():
    with pytest.raises(FeatvizError, match="layer:channel"):
        parse_target("blocks.3:²")


# ---------------------------------------------------------------- snapshots

def test_snapshots_present_and_last_is_final(tiny):
    settings = RenderSettings(size=32, steps=20)
    (r,) = collect(render_channels(tiny, [("relu3", 2)], settings, batch_size=1))
    steps = [s for s, _ in r.snapshots]
    assert steps == snapshot_steps(20) and steps[0] == 1 and steps[-1] == 20
    assert len(steps) == len(set(steps)) >= 5
    assert r.snapshots[-1][1] == r.png
    assert r.snapshots[0][1] != r.png  # the picture evolves


def test_render_yields_every_step_and_snapshots_when_asked(tiny):
    settings = RenderSettings(size=32, steps=6)
    records = list(render(tiny, [Target("relu3", 0), Target("conv2", 1)], settings, snapshot_steps=[2, 4]))
    assert [r.step for r in records] == [1, 2, 3, 4, 5, 6] and all(r.total == 6 for r in records)
    assert [r.step for r in records if r.snapshot is not None] == [2, 4, 6]
    assert records[-1].snapshot.shape == (2, 3, 32, 32)
    assert 0.0 <= float(records[-1].snapshot.min()) and float(records[-1].snapshot.max()) <= 1.0
    assert all(r.scores.shape == (2,) for r in records)


# ---------------------------------------------------------------- settings and specs

@pytest.mark.parametrize("changes, needle", [
    (dict(size=10000), "Size 10000 is out of range"),
    (dict(size=31), "Size 31 is out of range"),
    (dict(size="64"), "Size '64' is out of range"),
    (dict(steps=0), "Steps 0 is out of range"),
    (dict(steps=5001), "Steps 5001 is out of range"),
    (dict(seed=-1), "Seed -1"),
    (dict(init="zeros"), "Valid starting images: noise, gray, gradient"),
    (dict(objective="sum"), "Valid objectives: channel, neuron, logit"),
])
def test_settings_validation(changes, needle):
    with pytest.raises(FeatvizError, match=needle):
        RenderSettings(**changes)


def test_unknown_method_names_valid_choices():
    with pytest.raises(FeatvizError) as err:
        RenderSettings(method="fouriers")
    msg = str(err.value)
    assert "Valid methods: fourier, maco, classic" in msg and "Did you mean 'fourier'" in msg


def _other_value(value):
    if isinstance(value, RenderSettings):
        return value.with_(steps=value.steps + 1)
    if isinstance(value, str):
        return value + "x"
    return value + 1


def _spec():
    return RenderSpec("tests.tiny_model:make", "abc123", "relu3", 4, RenderSettings())


def test_spec_key_stable_and_changes_with_every_field():
    spec = _spec()
    assert spec.key() == _spec().key()
    assert len(spec.key()) == 32 and int(spec.key(), 16) >= 0
    keys = {spec.key()}
    for f in dataclasses.fields(RenderSpec):
        keys.add(dataclasses.replace(spec, **{f.name: _other_value(getattr(spec, f.name))}).key())
    alternatives = [dict(method="maco"), dict(size=64), dict(steps=50), dict(seed=7), dict(init="gray"),
                    dict(objective="neuron"), dict(precision="bf16"), dict(init="photo", photo="0" * 20),
                    dict(init="photo", photo="1" * 20)]
    assert set().union(*alternatives) == {f.name for f in dataclasses.fields(RenderSettings)}
    for changes in alternatives:
        keys.add(dataclasses.replace(spec, settings=spec.settings.with_(**changes)).key())
    assert len(keys) == 1 + len(dataclasses.fields(RenderSpec)) + len(alternatives)


def test_keys_of_settings_without_a_photo_are_unchanged():
    """Adding the photo start must not orphan anyone's cache: a key without a photo is the digest of the
    payload as it was before photos existed (no "photo" field, no fp32 "precision"). Version 4's keys,
    computed then, pin the formula."""
    def before_photos(settings: RenderSettings, version: int) -> str:
        payload = {"v": version, "model": "lite0", "weights": "abc", "layer": "blocks.3", "channel": 5,
                   **{k: v for k, v in dataclasses.asdict(settings).items() if k not in ("photo", "precision")}}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    assert before_photos(RenderSettings(steps=96), 4) == "d531a43885798e607bf88dcaf6d08f89"
    assert before_photos(RenderSettings(method="maco", init="gray", steps=96), 4) == "696c4faef746e89b82c1b49d2afa2689"
    for settings in (RenderSettings(), RenderSettings(method="maco", init="gray")):
        assert RenderSpec("lite0", "abc", "blocks.3", 5, settings).key() == before_photos(settings, ALGORITHM_VERSION)


def test_spec_key_is_the_same_in_another_process():
    """Cache keys must survive restarts: no dependence on hash randomization or object ids."""
    code = ("from featviz_core import RenderSpec, RenderSettings;"
            "print(RenderSpec('tests.tiny_model:make', 'abc123', 'relu3', 4, RenderSettings()).key())")
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=os.getcwd())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == _spec().key()


def test_query_roundtrip():
    assert RenderSettings().to_query() == {}
    assert RenderSettings.from_query({}) == RenderSettings()
    custom = RenderSettings(method="classic", size=64, steps=30, seed=3, init="gradient", objective="neuron")
    query = custom.to_query()
    assert query == {"method": "classic", "size": "64", "steps": "30", "seed": "3", "init": "gradient",
                     "objective": "neuron"}
    assert RenderSettings.from_query(query) == custom
    partial = RenderSettings(steps=12)
    assert partial.to_query() == {"steps": "12"}
    assert RenderSettings.from_query({**partial.to_query(), "unrelated": "x"}) == partial
    with pytest.raises(FeatvizError, match="not a whole number"):
        RenderSettings.from_query({"size": "big"})
    with pytest.raises(FeatvizError, match="out of range"):
        RenderSettings.from_query({"size": "4096"})
