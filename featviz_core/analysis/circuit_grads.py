"""The autograd behind channel circuits (circuits.py): how much each channel of an earlier layer drives
one channel of a later layer, as gradient x activation, in one forward pass (and its backward) per batch.

Both layers are read through the one hook, LayerTap (models/hooks.py): the source as what the layers
after it see (its module's output, after any clamp; LayerTap's `swap`), and the target channel as the
app reads a channel everywhere: its map's mean (before a capped clamp such as ReLU6; a logit as it is).
A token layer (a ViT block) is read as the adapter lays it out: its patch tokens on their grid, class
and register tokens dropped, so a channel is a channel and its mean is over the patch tokens. The
forward pass stops once the target has fired.
"""
from __future__ import annotations

import threading

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

from ..errors import FeatvizError
from ..models.hooks import LayerTap, Swap, laid_out
from ..models.loading import LoadedModel
from ..models.tokens import math_attention

NO_FORWARD_AD = "Trying to use forward AD with"  # PyTorch's words for an operation without a forward-mode formula


def _tap(model: LoadedModel, source: str, target: str, swap: Swap | None = None) -> LayerTap:
    return LayerTap(model.module, [source, target], {source: swap} if swap else None)


def _run(tap: LayerTap, model: LoadedModel, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass of images in [0, 1]: (source as seen downstream, target activation), laid out."""
    source, target = tap.names
    seen = tap.run(model.normalize(images.to(model.device)))
    if source not in seen:
        raise FeatvizError(f"Layer {source!r} does not run before {target!r} in {model.name}: "
                           "give a layer that comes before it.")
    return seen[source], seen[target]


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
    with torch.enable_grad(), _tap(model, source, target, leaf) as tap:
        for part in images.split(batch):
            src, tgt = _run(tap, model, part)
            act = channel_means(tgt)[:, channel]
            _feeds(act, source, target)
            (grad,) = torch.autograd.grad(act.sum(), tap.sent[source])
            part_sum = _per_channel_sum(laid_out(model.module, source, grad) * src.detach()).sum(0).double().cpu()
            total = part_sum if total is None else total + part_sum
            acts.append(act.detach().double().cpu())
    return (total / len(images)).numpy(), torch.cat(acts).numpy()


def _only(model: LoadedModel, source: str, out: torch.Tensor, channel: int) -> torch.Tensor:
    """The source's output with every channel but `channel` zeroed (and a token model's class and
    register tokens: they are not part of the channel's map)."""
    tangent = torch.zeros_like(out)
    laid_out(model.module, source, tangent)[:, channel] = laid_out(model.module, source, out)[:, channel]
    return tangent


def output_attribution(model: LoadedModel, source: str, channel: int, target: str, images: torch.Tensor,
                       batch: int = 16, method: str = "forward") -> np.ndarray:
    """Per target channel m: mean over images of sum over positions of d(act_m)/d(a_c) * a_c, for the
    source's channel c: one Jacobian-vector product per batch, forward-mode (`method="forward"`; a
    model with an operation that has no forward-mode formula falls back to the double-backward trick,
    "double"; any other error propagates). Attention runs through its math kernel (math_attention):
    the fused kernels have neither."""
    if method == "forward":
        try:
            return _forward_jvp(model, source, channel, target, images, batch)
        except NotImplementedError as exc:
            if NO_FORWARD_AD not in str(exc):
                raise
    return _double_backward_jvp(model, source, channel, target, images, batch)


def _forward_jvp(model, source, channel, target, images, batch) -> np.ndarray:
    total = None
    with torch.no_grad(), fwAD.dual_level(), math_attention():
        dual: Swap = lambda out: fwAD.make_dual(out, _only(model, source, out, channel))  # noqa: E731
        with _tap(model, source, target, dual) as tap:
            for part in images.split(batch):
                tangent = fwAD.unpack_dual(_run(tap, model, part)[1]).tangent
                if tangent is None:
                    raise FeatvizError(f"Layer {source!r} does not feed {target!r}: give a layer after it.")
                part_sum = channel_means(tangent).sum(0).double().cpu()
                total = part_sum if total is None else total + part_sum
    return (total / len(images)).numpy()


def _double_backward_jvp(model, source, channel, target, images, batch) -> np.ndarray:
    """J t through two reverse passes: g(u) = (d act / d src)^T u is linear in u, so d(g . t)/du = J t."""
    total = None
    leaf: Swap = lambda out: out.detach().requires_grad_(True)  # noqa: E731
    with torch.enable_grad(), math_attention(), _tap(model, source, target, leaf) as tap:
        for part in images.split(batch):
            tgt = _run(tap, model, part)[1]
            acts, src = channel_means(tgt), tap.sent[source]
            _feeds(acts, source, target)
            u = torch.ones_like(acts, requires_grad=True)
            (g,) = torch.autograd.grad((acts * u).sum(), src, create_graph=True)
            (jt,) = torch.autograd.grad((g * _only(model, source, src.detach(), channel)).sum(), u)
            total = jt.sum(0).double().cpu() if total is None else total + jt.sum(0).double().cpu()
    return (total / len(images)).numpy()


def ablated_activation(model: LoadedModel, target: str, channel: int, source: str, images: torch.Tensor,
                       replace: dict[int, float] | None = None, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The target channel's activation on every image with the source channels in `replace` set to
    constants ({channel: value}; None: as they are; a token layer's patch tokens, as they are laid out),
    and the source channels' means over the images and positions (as seen, after replacing): replacing
    channels by these means is mean ablation, by 0 zero ablation."""
    keys = sorted(replace or {})

    def swap(out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        grid = laid_out(model.module, source, out)  # a view of out
        values = torch.tensor([replace[k] for k in keys], dtype=out.dtype, device=out.device)
        grid[:, keys] = values.view(1, -1, *([1] * (grid.dim() - 2)))
        return out

    means, acts = None, []
    with torch.no_grad(), _tap(model, source, target, swap if keys else None) as tap:
        for part in images.split(batch):
            src, tgt = _run(tap, model, part)
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
    handles = [m.register_forward_hook(record(n)) for n, m in convs]  # before the tap's: it stops the pass
    try:
        with torch.no_grad(), _tap(model, source, target) as tap:
            src, tgt = _run(tap, model, image)
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
