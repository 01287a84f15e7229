"""The faster forms of 1x1 and SAME-padded depthwise convolutions compute what the originals do."""
from __future__ import annotations

import copy

import pytest
import torch
from timm.layers import Conv2dSame
from torch import nn

from featviz_core.models.fast_convs import PointwiseConv2d, SameDepthwiseConv2d, use_fast_convs


def _forward_and_grad(module: nn.Module, x: torch.Tensor, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    y = module(x)
    weights = torch.rand(y.shape, generator=torch.Generator().manual_seed(seed))
    (y * weights).sum().backward()
    return y.detach(), x.grad


def _swapped(module: nn.Module) -> nn.Module:
    fast = copy.deepcopy(module)
    assert use_fast_convs(fast) == 1
    return fast


@pytest.mark.parametrize("channels_last", [True, False])
def test_pointwise_conv_is_the_conv(channels_last):
    torch.manual_seed(0)
    conv = nn.Conv2d(24, 96, 1).eval().requires_grad_(False)
    fast = _swapped(conv)
    assert type(fast) is PointwiseConv2d and isinstance(fast, nn.Conv2d)
    assert fast.state_dict().keys() == conv.state_dict().keys()
    x = torch.randn(3, 24, 17, 13)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    (y, g), (y2, g2) = _forward_and_grad(conv, x), _forward_and_grad(fast, x)
    assert y2.shape == y.shape
    torch.testing.assert_close(y2, y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g2, g, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel, stride, size", [(3, 2, 124), (3, 2, 125), (5, 2, 62), (5, 2, 31), (3, 1, 20),
                                                  (5, 1, 21), (3, 3, 20)])
def test_same_depthwise_conv_is_timms(kernel, stride, size):
    torch.manual_seed(0)
    conv = Conv2dSame(16, 16, kernel, stride=stride, groups=16, bias=True).eval().requires_grad_(False)
    fast = _swapped(conv)
    assert type(fast) is SameDepthwiseConv2d
    x = torch.randn(2, 16, size, size + 1).contiguous(memory_format=torch.channels_last)
    (y, g), (y2, g2) = _forward_and_grad(conv, x), _forward_and_grad(fast, x)
    assert y2.shape == y.shape
    torch.testing.assert_close(y2, y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g2, g, rtol=1e-5, atol=1e-5)


def test_other_convs_are_left_as_they_are():
    kept = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 1, stride=2), nn.Conv2d(8, 8, 1, groups=2),
                         Conv2dSame(8, 16, 3, stride=2), nn.Conv2d(8, 8, 1, padding=1))
    assert use_fast_convs(kept) == 0
    assert [type(m) for m in kept] == [nn.Conv2d, nn.Conv2d, nn.Conv2d, Conv2dSame, nn.Conv2d]


@pytest.mark.real_model
def test_lite0_loads_with_fast_convs_and_computes_the_same():
    from featviz_core import load_model
    from featviz_core.models.hooks import LayerTap

    model = load_model("lite0", device="cpu")
    kinds = [type(m) for m in model.module.modules()]
    # Lite0: 1x1 expansions and projections, and the 4 stride-2 depthwise convs (blocks.1-3.0, 5.0).
    assert kinds.count(SameDepthwiseConv2d) == 4
    assert kinds.count(PointwiseConv2d) >= 30
    plain = copy.deepcopy(model.module)
    for m in plain.modules():
        if type(m) in (PointwiseConv2d, SameDepthwiseConv2d):
            m.__class__ = nn.Conv2d if type(m) is PointwiseConv2d else Conv2dSame
    x = torch.rand(2, 3, 248, 248, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    with LayerTap(model.module, ["blocks.5"]) as tap:
        fast = tap.run(x)["blocks.5"]
    with LayerTap(plain, ["blocks.5"]) as tap:
        slow = tap.run(x)["blocks.5"]
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-4 * float(slow.abs().max()))
