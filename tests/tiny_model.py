"""Tiny CNNs for the core tests, loadable as `load_model("tests.tiny_model:make")`.

Weights come from a fixed seed (and do not disturb the global random state), so every build of a
factory is the same network, bit for bit on every CPU (`seeded`): the weights decide the cache
keys, which tests/test_same_pictures.py compares exactly.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from featviz_core.models.hooks import LOGITS
from featviz_core.models.loading import ModelParts

TINY_LAYERS = ["conv1", "relu1", "conv2", "relu2", "conv3", "relu3", LOGITS]


class TinyNet(nn.Module):
    """conv-relu x3 (the second with stride 2), global average pool, linear classifier."""

    def __init__(self, in_channels: int = 3, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=True)  # load_model must switch in-place off
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        x = self.relu3(self.conv3(x))
        return self.fc(self.pool(x).flatten(1))


def _uniform_bounds(module: nn.Module) -> list[tuple[torch.Tensor, float]]:
    """Each parameter of a conv or linear layer and the bound b of torch's default init, uniform(-b, b)
    (kaiming_uniform_ with a=sqrt(5) for the weight, 1/sqrt(fan_in) for the bias) as the float32 that
    torch's kernel uses, in torch's order."""
    fan_in = module.weight[0].numel()
    weight_bound, bias_bound = math.sqrt(3.0) * math.sqrt(2.0 / (1 + 5)) / math.sqrt(fan_in), 1 / math.sqrt(fan_in)
    return [(module.weight, float(torch.tensor(weight_bound))), (module.bias, float(torch.tensor(bias_bound)))]


def seeded(make_net, seed: int) -> nn.Module:
    """`make_net()` with torch's default init of every conv and linear layer from `seed`, the same bits on
    every CPU, leaving the global random state alone.

    torch's uniform_(-b, b) computes x * 2b - b from a draw x in [0, 1): fused into one rounding by its
    AVX2 and AVX-512 kernels, rounded twice by its baseline kernel, so one seed made other weights (and
    other cache keys) on other CPUs. Here x comes from uniform_(0, 1), exact everywhere, and b * (2x - 1)
    is exact in float64, then rounded once to float32: the AVX2 and AVX-512 weights, on any CPU."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        net = make_net()
        torch.manual_seed(seed)  # the draws torch's own init made, in its order
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                for param, bound in _uniform_bounds(module):
                    draws = torch.rand(param.shape).double()
                    param.copy_((bound * (2 * draws - 1)).float())
    return net


def build(in_channels: int = 3, seed: int = 0) -> TinyNet:
    net = seeded(lambda: TinyNet(in_channels), seed)
    with torch.no_grad():  # positive biases: every ReLU unit starts alive, so every channel can be driven
        for conv in (net.conv1, net.conv2, net.conv3):
            conv.weight.mul_(2.0)
            conv.bias.fill_(0.1)
    return net


def make() -> ModelParts:
    """RGB, 64 px natural size, ImageNet-style normalization."""
    return ModelParts(build(3), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 64, list(TINY_LAYERS))


def make_other_seed() -> ModelParts:
    """Same architecture, different weights."""
    return ModelParts(build(3, seed=1), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 64, list(TINY_LAYERS))


def make_gray():
    """A 1-channel, 32-px CIFAR-like net in the tuple form (module, (mean, std), input_size)."""
    return build(1, seed=2), ((0.5,), (0.25,)), 32


def make_dead():
    """conv3 channel 0 has zero weights and bias, so relu3:0 is constant zero for every input."""
    net = build(3)
    with torch.no_grad():
        net.conv3.weight[0].zero_()
        net.conv3.bias[0] = 0.0
    return ModelParts(net, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 64, list(TINY_LAYERS))


class _NaNAfter(nn.Module):
    def forward(self, x):
        return x * float("nan")


def make_nan():
    """A net whose conv3 output is NaN for every input."""
    net = build(3)
    net.conv3 = nn.Sequential(net.conv3, _NaNAfter())
    return ModelParts(net, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 64, list(TINY_LAYERS))


def make_wrong_type():
    """Not a valid factory result."""
    return "not a model"


def make_aliased() -> ModelParts:
    """The tiny net with aliases, as a registered model would declare them."""
    parts = make()
    parts.aliases = {"first": "conv1", "last": "relu3"}
    return parts


class ConvBNNet(nn.Module):
    """conv -> BatchNorm (a negative scale on channel 0) -> ReLU -> conv, every layer listed."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.relu1(self.bn1(self.conv1(x))))


def make_bn() -> ModelParts:
    net = seeded(ConvBNNet, 4)
    with torch.no_grad():
        net.bn1.weight.copy_(torch.tensor([-2.0, 0.5, 1.0, 3.0]))
        net.bn1.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
        net.bn1.running_mean.copy_(torch.tensor([0.2, -0.1, 0.0, 0.4]))
        net.bn1.running_var.copy_(torch.tensor([0.5, 2.0, 1.0, 0.25]))
    return ModelParts(net, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 32)  # layer_names None: every 4-D output


def make_switched_off():
    """relu3:0 is 0 on every starting picture (its bias sits below its largest pre-activation on
    gray and noise starts) but can be switched on by changing the picture."""
    net = build(3)
    with torch.no_grad():
        noise = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        starts = torch.cat([torch.full((1, 3, 64, 64), 0.5), 0.5 + 0.1 * (noise - 0.5)])
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        x = (starts - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
        pre = net.conv3(net.relu2(net.conv2(net.relu1(net.conv1(x)))))[:, 0]
        net.conv3.bias[0] -= float(pre.max()) + 0.2 * float(pre.std())
    return ModelParts(net, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 64, list(TINY_LAYERS))


def make_relu6():
    """relu3 is a ReLU6 whose channels sit at its cap of 6 on ordinary pictures."""
    net = build(3)
    net.relu3 = nn.ReLU6()
    with torch.no_grad():
        net.conv3.weight.mul_(8.0)
        net.conv3.bias.fill_(6.0)
    return ModelParts(net, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 64, list(TINY_LAYERS))


OOM_ABOVE = 3  # make_oom: the most pictures a forward pass takes


def _out_of_memory_above(_module, inputs):
    if inputs[0].shape[0] > OOM_ABOVE:
        raise torch.cuda.OutOfMemoryError(f"simulated: {inputs[0].shape[0]} pictures > {OOM_ABOVE}")


def make_oom() -> ModelParts:
    """The tiny net (same weights as make) whose forward pass raises CUDA's out-of-memory error past
    OOM_ABOVE pictures, as a GPU would: the runner's halving is tested on a CPU."""
    parts = make()
    parts.module.register_forward_pre_hook(_out_of_memory_above)
    return parts


def make_block() -> ModelParts:
    """The tiny net whose conv2 is a block, conv then batch norm (negative scales on half its channels),
    listed as a whole: its parts `conv2.0` and `conv2.1` are layers by module name only. load_model
    folds the batch norm into the conv, so `conv2.0` must be read back as the conv's own output."""
    net = build(3)
    bn = nn.BatchNorm2d(16)
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(-2.0, 2.0, 16) + 0.05)
        bn.bias.copy_(torch.linspace(0.3, -0.3, 16))
        bn.running_mean.copy_(torch.linspace(-0.5, 0.5, 16))
        bn.running_var.copy_(torch.linspace(0.5, 2.0, 16))
    net.conv2 = nn.Sequential(net.conv2, bn)
    return ModelParts(net, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 64, list(TINY_LAYERS))
