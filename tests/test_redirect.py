"""Lucid's redirected ReLU gradient: wakes channels that start switched off, leaves the rest alone."""
from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from featviz_core import RenderSettings, collect, load_model, render_channels
from featviz_core.models.hooks import LayerTap
from featviz_core.optvis.redirect import redirected_relu

redirect_module = importlib.import_module("featviz_core.optvis.redirect")

render_module = importlib.import_module("featviz_core.optvis.render")  # the module: the package exports `render`

pytestmark = pytest.mark.usefixtures("single_thread")


def _grads(fn, x, active):
    x = x.clone().requires_grad_(True)
    with redirected_relu(active):
        (-fn(x).sum()).backward()  # ascent: the loss is the negated objective
    return x.grad


@pytest.mark.parametrize("fn", [F.relu, nn.ReLU(inplace=True), nn.ReLU6(), F.relu6],
                         ids=["relu", "ReLU-inplace", "ReLU6", "relu6"])
def test_blocked_picture_gets_redirected_gradient_and_others_plain(fn):
    x = torch.tensor([[[[-1.0, 2.0], [-3.0, 0.5]]], [[[-1.0, -2.0], [-3.0, -0.5]]]])  # picture 1: all off
    weights = torch.tensor([[[[1.0, 1.0], [-1.0, 1.0]]]])  # the objective wants unit (1, 0) lower
    plain = _grads(lambda t: fn(t + 0) * weights, x, active=False)  # + 0: in-place ReLUs need a non-leaf
    redirected = _grads(lambda t: fn(t + 0) * weights, x, active=True)
    assert torch.equal(redirected[0], plain[0])  # picture 0 passes gradient: untouched
    assert torch.equal(plain[1], torch.zeros_like(plain[1]))  # without the redirect: stuck
    # With it: raise the off units the objective wants up, never push an off unit further down.
    assert torch.equal(redirected[1], torch.tensor([[[-1.0, -1.0], [0.0, -1.0]]]))


def test_forward_values_unchanged_and_mode_leaves_other_ops_alone():
    x = torch.randn(3, 4, 5, 5)
    with redirected_relu():
        assert torch.equal(F.relu(x), x.clamp(min=0)) and torch.equal(nn.ReLU6()(x * 4), (x * 4).clamp(0, 6))
        assert torch.equal(F.hardtanh(x), x.clamp(-1, 1))  # not ReLU-like: plain


def test_switched_off_channel_wakes_only_with_the_redirect(monkeypatch):
    model = load_model("tests.tiny_model:make_switched_off", device="cpu")
    settings = RenderSettings(size=32, steps=16)
    woken = collect(render_channels(model, [("relu3", 0)], settings))[0]
    recipe = render_module.RECIPES["fourier"]
    monkeypatch.setitem(render_module.RECIPES, "fourier", dataclasses.replace(recipe, wake_steps=0))
    stuck = collect(render_channels(model, [("relu3", 0)], settings))[0]
    assert stuck.dead and max(stuck.curve) == 0.0
    assert not woken.dead and woken.curve[-1] > 0 and woken.curve[-1] > 10 * abs(woken.curve[0])


def test_capped_clamp_layer_is_read_and_ascended_before_its_cap():
    model = load_model("tests.tiny_model:make_relu6", device="cpu")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad(), LayerTap(model.module, ["relu3", "conv3"]) as tap:
        out = tap.run(model.normalize(x))
    assert torch.equal(out["relu3"], out["conv3"]) and out["relu3"].max() > 6  # the value going into the clamp
    result = collect(render_channels(model, [("relu3", 0)], RenderSettings(size=32, steps=16)))[0]
    assert result.curve[0] > 6 and result.curve[-1] > result.curve[0] + 0.5  # starts at the cap and climbs on


@pytest.mark.filterwarnings("ignore:TF32 acceleration")
def test_only_pictures_a_clamp_blocks_are_redirected_and_the_redirect_stops_when_none_is(monkeypatch):
    """A switched-off channel batched with a live one: the redirect acts on the switched-off picture
    alone, for as many steps as it stays blocked, and stops once nothing is blocked; the live picture is
    the one it is alone."""
    model = load_model("tests.tiny_model:make_switched_off", device="cpu")
    settings = RenderSettings(size=32, steps=16)
    entered = []
    real_init = redirect_module._Redirect.__init__

    def counting_init(self, wake):
        entered.append(None if wake.waking is None else wake.waking.tolist())
        real_init(self, wake)

    monkeypatch.setattr(redirect_module._Redirect, "__init__", counting_init)
    # The native convolution is per picture; ATen's baseline kernels still round by batch size
    # (test_render's batched-versus-alone test): the first steps tightly, the rest within that drift.
    with torch.backends.mkldnn.flags(enabled=False):
        live = collect(render_channels(model, [("relu3", 1)], settings))[0]
        assert entered == [[True]]  # the first step only: nothing was blocked in it
        entered.clear()
        both = {r.channel: r for r in collect(render_channels(model, [("relu3", 0), ("relu3", 1)], settings))}
    assert entered[0] == [True, True] and all(w == [True, False] for w in entered[1:]) and 1 < len(entered) < 16
    assert not both[0].dead and both[0].curve[-1] > 10 * abs(both[0].curve[0])
    np.testing.assert_allclose(both[1].curve[:3], live.curve[:3], rtol=1e-4, atol=1e-6)
    assert np.abs(both[1].image.astype(int) - live.image.astype(int)).mean() <= 4
    assert np.abs(np.subtract(both[1].curve, live.curve)).max() <= 0.02 * np.abs(live.curve).max()
