"""Convolutions computed a faster way on a CPU, with the same result (models/folding.speed_up swaps them in).

Measured on Lite0, one torch thread, 4 pictures at 224 px (README, Render speed):
- A 1x1 convolution is a matrix product over the pixels. Single-threaded, torch sends 1x1
  convolutions of fewer than 16 pictures to its im2col path, which also copies channels-last
  activations to NCHW and back; as one matrix product over the channels-last pixels (a view, no copy)
  a picture-step of blocks.5 took 43.7 instead of 47.6 ms.
- TensorFlow's "SAME" padding of a stride-2 depthwise convolution pads one pixel more after than
  before; timm copies the activation into a padded tensor every step. The same convolution with its
  kernel grown by a zero row and column in front and symmetric padding reads the activation in place:
  blocks.1.0's took 6.5 instead of 13.1 ms forward and backward, with equal results.
The swaps change a module's class only: its name, weights, state dict and hooks stay as they were.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PointwiseConv2d(nn.Conv2d):
    """A 1x1, stride-1, ungrouped convolution; on a CPU as one matrix product over the pixels."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4:
            return super()._conv_forward(x, weight, bias)
        b, c, h, w = x.shape
        y = F.linear(x.permute(0, 2, 3, 1).reshape(-1, c), weight.view(weight.shape[0], c), bias)
        return y.view(b, h, w, -1).permute(0, 3, 1, 2)


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding of one side: (before, after)."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class SameDepthwiseConv2d(nn.Conv2d):
    """A depthwise convolution with TensorFlow's SAME padding (timm's Conv2dSame), on a CPU padded inside
    the convolution: where SAME pads more after than before, the kernel grows by zero rows and columns in
    front instead, and both sides pad equally."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (dh, dw) = self.weight.shape[-2:], self.dilation
        top, bottom = _same_pads(x.shape[-2], kh, self.stride[0], dh)
        left, right = _same_pads(x.shape[-1], kw, self.stride[1], dw)
        # Off a CPU (not measured there) and with dilation (a grown kernel would need dilated zeros): timm's way.
        if x.device.type != "cpu" or dh != 1 or dw != 1:
            return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, self.bias, self.stride, 0, self.dilation,
                            self.groups)
        weight = F.pad(self.weight, (right - left, 0, bottom - top, 0))
        return F.conv2d(x, weight, self.bias, self.stride, (bottom, right), 1, self.groups)


def _is_pointwise(conv: nn.Conv2d) -> bool:
    return (conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.groups == 1 and conv.dilation == (1, 1)
            and conv.padding in ((0, 0), 0) and conv.padding_mode == "zeros")


def _is_same_depthwise(conv: nn.Conv2d) -> bool:
    # timm's Conv2dSame, by name: timm is an optional import here, and its class is the only such one.
    return (type(conv).__name__ == "Conv2dSame" and conv.groups == conv.in_channels == conv.out_channels
            and conv.padding in ((0, 0), 0))


def use_fast_convs(module: nn.Module) -> int:
    """Swap in the faster forms of every plain 1x1 convolution and SAME-padded depthwise convolution
    of `module`; returns how many were swapped."""
    swapped = 0
    for conv in module.modules():
        if type(conv) is nn.Conv2d and _is_pointwise(conv):
            conv.__class__ = PointwiseConv2d
        elif isinstance(conv, nn.Conv2d) and _is_same_depthwise(conv):
            conv.__class__ = SameDepthwiseConv2d
        else:
            continue
        swapped += 1
    return swapped
