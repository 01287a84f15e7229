"""Weights that load but cannot give a picture: NaN or infinite values anywhere, or a layer on the
forward path whose weights are all zeros (its output, and every gradient through it, is constant).
Refused with one line naming the tensor, before anything is rendered."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from ..errors import UnusableWeightsError


def check_finite(module: nn.Module, what: str) -> None:
    """Refuses NaN or infinite values in any floating tensor of the module (parameters and buffers)."""
    for key, tensor in module.state_dict().items():
        if not tensor.is_floating_point():
            continue
        bad = ~torch.isfinite(tensor.detach())
        if bad.any():
            kind = "NaN" if torch.isnan(tensor).any() else "infinite"
            raise UnusableWeightsError(
                f"The weights of {what} cannot give a picture: {key} has {int(bad.sum())} {kind} values "
                f"(of {tensor.numel()}). Use weights from a finished, healthy training run.")


@contextlib.contextmanager
def modules_that_run(module: nn.Module) -> Iterator[list[str]]:
    """Records (in call order) the names of the submodules with a weight that the forward passes inside
    the block call."""
    ran: list[str] = []
    handles = []
    for name, sub in module.named_modules():
        if name and isinstance(getattr(sub, "weight", None), torch.Tensor):
            handles.append(sub.register_forward_pre_hook(lambda _m, _i, name=name: ran.append(name)))
    try:
        yield ran
    finally:
        for handle in handles:
            handle.remove()


def check_no_zero_layer(module: nn.Module, ran: list[str], what: str) -> None:
    """Refuses a layer on the path (one that ran) whose weight matrix or kernel is all zeros. Vectors
    (batch-norm scales, biases) may be zero: a zero-initialized residual branch is a healthy network."""
    modules = dict(module.named_modules())
    for name in dict.fromkeys(ran):
        weight = getattr(modules[name], "weight", None)
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2 and weight.numel() and not weight.any():
            raise UnusableWeightsError(
                f"The weights of {what} cannot give a picture: {name}.weight is all zeros, so nothing of the "
                "image passes through it. Use weights from a finished, healthy training run.")
