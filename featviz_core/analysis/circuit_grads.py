"""The autograd behind channel circuits (circuits.py): how much each channel of an earlier layer drives
one channel of a later layer, as gradient x activation, in one forward pass (and its backward) per batch.

The source layer is read as what the layers after it see (its module's output, after any clamp), and
the target channel as the app reads a channel everywhere: its map's mean (before a capped clamp such as
ReLU6, as LayerTap reads it; a logit as it is). The forward pass stops once the target has fired.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

from ..errors import FeatvizError
from ..models.folding import raw_output, refold
from ..models.hooks import LOGITS
from ..models.loading import LoadedModel

Swap = Callable[[torch.Tensor], torch.Tensor]  # what the layers after the source see instead of its output


class _Stop(Exception):
    """Raised from the target's hook: nothing after the target is needed."""


class Probe:
    """Hooks for forward passes of a (possibly shared) model: records the source layer's output,
    replaced by `swap(output)` where given, and the target layer's activation; acts only on the
    thread inside `run`, as LayerTap does."""

    def __init__(self, model: LoadedModel, source: str, target: str, swap: Swap | None = None):
        self.model, self.source, self.target, self.swap = model, source, target, swap
        self.seen: dict[str, torch.Tensor] = {}
        self._handles: list = []
        self._thread: int | None = None

    def __enter__(self) -> "Probe":
        modules = dict(self.model.module.named_modules())
        self._handles.append(modules[self.source].register_forward_hook(self._on_source))
        if self.target != LOGITS:
            self._handles.append(modules[self.target].register_forward_hook(self._on_target))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _on_source(self, module, inputs, output):
        if self._thread != threading.get_ident() or not isinstance(output, torch.Tensor):
            return None
        raw = raw_output(module, output)  # a conv with a batch norm folded into it: its own output
        seen = self.swap(raw) if self.swap else raw
        self.seen["source"] = seen
        return refold(module, seen) if self.swap else output

    def _on_target(self, module, inputs, output):
        if self._thread != threading.get_ident():
            return
        self.seen["target"] = inputs[0] if isinstance(module, nn.Hardtanh) else raw_output(module, output)
        raise _Stop

    def run(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass of images in [0, 1]: (source as seen downstream, target activation)."""
        self.seen = {}
        self._thread = threading.get_ident()
        try:
            self.seen["target"] = self.model.module(self.model.normalize(images.to(self.model.device)))
        except _Stop:
            pass
        finally:
            self._thread = None
        if "source" not in self.seen:
            raise FeatvizError(f"Layer {self.source!r} does not run before {self.target!r} in {self.model.name}: "
                               "give a layer that comes before it.")
        return self.seen["source"], self.seen["target"]


def channel_means(activation: torch.Tensor) -> torch.Tensor:
    """(b, C, H, W) -> (b, C): each channel's mean over positions (a logit stays as it is)."""
    return activation.flatten(2).mean(2) if activation.dim() > 2 else activation


def _per_channel_sum(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(2).sum(2) if t.dim() > 2 else t


def _feeds(act: torch.Tensor, source: str, target: str) -> None:
    if not act.requires_grad:
        raise FeatvizError(f"Layer {source!r} does not feed {target!r}: give a layer on the path into it.")


def input_attribution(model: LoadedModel, target: str, channel: int, source: str, images: torch.Tensor,
                      batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Per source channel k: mean over images of sum over positions of d(act)/d(a_k) * a_k, where act
    is the target channel's mean; and act on every image. One forward + backward per batch."""
    total, acts = None, []
    leaf: Swap = lambda out: out.detach().requires_grad_(True)  # noqa: E731 (the backward stops at the source)
    with torch.enable_grad(), Probe(model, source, target, leaf) as probe:
        for part in images.split(batch):
            src, tgt = probe.run(part)
            act = channel_means(tgt)[:, channel]
            _feeds(act, source, target)
            (grad,) = torch.autograd.grad(act.sum(), src)
            part_sum = _per_channel_sum(grad * src.detach()).sum(0).double().cpu()
            total = part_sum if total is None else total + part_sum
            acts.append(act.detach().double().cpu())
    return (total / len(images)).numpy(), torch.cat(acts).numpy()


def _only(out: torch.Tensor, channel: int) -> torch.Tensor:
    tangent = torch.zeros_like(out)
    tangent[:, channel] = out[:, channel]
    return tangent


def output_attribution(model: LoadedModel, source: str, channel: int, target: str, images: torch.Tensor,
                       batch: int = 16, method: str = "forward") -> np.ndarray:
    """Per target channel m: mean over images of sum over positions of d(act_m)/d(a_c) * a_c, for the
    source's channel c: one Jacobian-vector product per batch, forward-mode (`method="forward"`; a
    model with an operation forward mode lacks falls back to the double-backward trick, "double")."""
    if method == "forward":
        try:
            return _forward_jvp(model, source, channel, target, images, batch)
        except (NotImplementedError, RuntimeError):
            pass
    return _double_backward_jvp(model, source, channel, target, images, batch)


def _forward_jvp(model, source, channel, target, images, batch) -> np.ndarray:
    total = None
    with torch.no_grad(), fwAD.dual_level():
        dual: Swap = lambda out: fwAD.make_dual(out, _only(out, channel))  # noqa: E731
        with Probe(model, source, target, dual) as probe:
            for part in images.split(batch):
                tangent = fwAD.unpack_dual(probe.run(part)[1]).tangent
                if tangent is None:
                    raise FeatvizError(f"Layer {source!r} does not feed {target!r}: give a layer after it.")
                part_sum = channel_means(tangent).sum(0).double().cpu()
                total = part_sum if total is None else total + part_sum
    return (total / len(images)).numpy()


def _double_backward_jvp(model, source, channel, target, images, batch) -> np.ndarray:
    """J t through two reverse passes: g(u) = (d act / d src)^T u is linear in u, so d(g . t)/du = J t."""
    total = None
    leaf: Swap = lambda out: out.detach().requires_grad_(True)  # noqa: E731
    with torch.enable_grad(), Probe(model, source, target, leaf) as probe:
        for part in images.split(batch):
            src, tgt = probe.run(part)
            acts = channel_means(tgt)
            _feeds(acts, source, target)
            u = torch.ones_like(acts, requires_grad=True)
            (g,) = torch.autograd.grad((acts * u).sum(), src, create_graph=True)
            (jt,) = torch.autograd.grad((g * _only(src.detach(), channel)).sum(), u)
            total = jt.sum(0).double().cpu() if total is None else total + jt.sum(0).double().cpu()
    return (total / len(images)).numpy()


def ablated_activation(model: LoadedModel, target: str, channel: int, source: str, images: torch.Tensor,
                       replace: dict[int, float] | None = None, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The target channel's activation on every image with the source channels in `replace` set to
    constants ({channel: value}; None: as they are), and the source channels' means over the images
    and positions (as seen, after replacing): replacing channels by these means is mean ablation."""
    keys = sorted(replace or {})

    def swap(out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        values = torch.tensor([replace[k] for k in keys], dtype=out.dtype, device=out.device)
        out[:, keys] = values.view(1, -1, *([1] * (out.dim() - 2)))
        return out

    means, acts = None, []
    with torch.no_grad(), Probe(model, source, target, swap if keys else None) as probe:
        for part in images.split(batch):
            src, tgt = probe.run(part)
            part_sum = channel_means(src).sum(0).double().cpu()
            means = part_sum if means is None else means + part_sum
            acts.append(channel_means(tgt)[:, channel].double().cpu())
    return torch.cat(acts).numpy(), (means / len(images)).numpy()


def direct_conv(model: LoadedModel, source: str, target: str, image: torch.Tensor) -> tuple[str, nn.Conv2d] | None:
    """The convolution that takes exactly the source's output and gives exactly the target's activation
    (the same tensors, in a forward pass of `image`), if the source feeds the target through that one
    convolution and nothing else; else None (an activation, a residual sum, a pooling in between)."""
    calls, me = [], threading.get_ident()

    def record(name: str):
        def hook(module, inputs, output):
            if threading.get_ident() == me and inputs:
                calls.append((name, module, inputs[0], output))
        return hook

    convs = [(n, m) for n, m in model.module.named_modules() if isinstance(m, nn.Conv2d)]
    handles = [m.register_forward_hook(record(n)) for n, m in convs]  # before the probe's: it stops the pass
    try:
        with torch.no_grad(), Probe(model, source, target) as probe:
            src, tgt = probe.run(image)
    finally:
        for handle in handles:
            handle.remove()
    return next(((name, conv) for name, conv, inp, out in calls if inp is src and out is tgt), None)


def input_weight_norms(conv: nn.Conv2d, channel: int) -> np.ndarray:
    """L2 norm of the kernel from each input channel to output `channel` (0 outside its group)."""
    kernel = conv.weight.detach()[channel].flatten(1).norm(dim=1).double().cpu().numpy()  # (in / groups,)
    group = channel // (conv.out_channels // conv.groups)
    norms = np.zeros(conv.in_channels)
    norms[group * len(kernel):(group + 1) * len(kernel)] = kernel
    return norms
