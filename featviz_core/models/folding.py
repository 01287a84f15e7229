"""Batch norms folded into the convolutions before them (half the cost of early layers on CPU), and
the way back: a folded convolution's own output, for a tap that names it as a layer.

A fold keeps every module name that still runs: the conv keeps its name (now computing conv + batch
norm), the batch norm's name holds its activation (timm's BatchNormAct2d: ReLU6 for Lite's bn1 / bn2,
read before its clamp by LayerTap; Identity for a linear bottleneck's bn3)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .fast_convs import use_fast_convs

# Non-persistent buffers of a folded conv (not in its state dict, so not in the weights digest; they
# follow the module to its device): conv = (folded - shift) / scale, per output channel.
FOLD_SCALE, FOLD_SHIFT = "featviz_fold_scale", "featviz_fold_shift"


def raw_output(module: nn.Module, output):
    """What `module` computed before a batch norm was folded into it (its output unchanged otherwise)."""
    scale = getattr(module, FOLD_SCALE, None)
    if scale is None or not isinstance(output, torch.Tensor) or output.dim() != 4:
        return output
    shift = getattr(module, FOLD_SHIFT)
    return (output - shift.view(1, -1, 1, 1)) / scale.view(1, -1, 1, 1)


def refold(module: nn.Module, raw: torch.Tensor) -> torch.Tensor:
    """raw_output's inverse: what the layers after a folded conv see for its own output `raw`."""
    scale = getattr(module, FOLD_SCALE, None)
    if scale is None or raw.dim() != 4:
        return raw
    return raw * scale.view(1, -1, 1, 1) + getattr(module, FOLD_SHIFT).view(1, -1, 1, 1)


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats
            and conv.out_channels == bn.num_features and bn.affine)


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> bool:
    """Folds `bn` into `conv`; False (nothing changed) where a scale of 0 would make the conv's own
    output impossible to get back."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    if not bool((scale.abs() > 0).all()):
        return False
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    shift = bn.bias - bn.running_mean * scale
    conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
    conv.bias = nn.Parameter(bias * scale + shift, requires_grad=False)
    conv.register_buffer(FOLD_SCALE, scale.detach().clone(), persistent=False)
    conv.register_buffer(FOLD_SHIFT, shift.detach().clone(), persistent=False)
    return True


def fold_batchnorm(module: nn.Module, keep: set[str]) -> int:
    """Fold every eval-mode BatchNorm that directly follows a conv (as consecutive children) into the
    conv's weights, keeping only the BN's activation (timm's BatchNormAct2d) under the BN's name.
    Convs named in `keep` (listed layers) are left alone: their own output must not change.
    Returns how many were folded."""
    folded = 0
    for prefix, parent in list(module.named_modules()):
        kids = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(kids, kids[1:]):
            if not _foldable(conv, bn) or (f"{prefix}.{conv_name}" if prefix else conv_name) in keep:
                continue
            if _fold(conv, bn):
                setattr(parent, bn_name, getattr(bn, "act", None) or nn.Identity())
                folded += 1
    return folded


def speed_up(module: nn.Module, in_channels: int, size: int, device: torch.device, keep: set[str]) -> nn.Module:
    """Fold batch norms, swap in the faster forms of some convolutions (fast_convs.py) and use
    channels_last, keeping the result only if it computes the same function (a model whose children
    are registered out of forward order would not)."""
    fast = copy.deepcopy(module)
    if not fold_batchnorm(fast, keep) + use_fast_convs(fast):
        return module.to(memory_format=torch.channels_last)
    fast = fast.to(memory_format=torch.channels_last)
    probe = torch.rand(2, in_channels, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        ref, out = module(probe), fast(probe.contiguous(memory_format=torch.channels_last))
    same = isinstance(ref, torch.Tensor) and torch.allclose(ref, out, rtol=1e-3,
                                                            atol=1e-3 * float(ref.abs().max()) + 1e-5)
    return fast if same else module.to(memory_format=torch.channels_last)
