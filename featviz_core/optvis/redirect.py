"""Lucid's redirected ReLU gradient: lets the ascent wake channels that start switched off.

A channel whose ReLU (or ReLU6) output is 0 everywhere on the starting picture passes no gradient,
so plain ascent never moves it: the picture stays gray and the channel is "dead" (deep layers such
as Lite0's `bn2` have many). While `redirected_relu()` is active, every ReLU-like clamp in the
model keeps its forward value, but for a picture whose gradient through that clamp would be zero
everywhere, the gradient is passed through anyway, except where it would push a unit that is
already off further off. Pictures that get a normal gradient are untouched, and the decision is
per picture, so batch-mates never influence each other. A render redirects only while it has to: the
block may name which pictures are still waking, and reports which of them a clamp blocked (`Wake`).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


class Wake:
    """The pictures a redirect may act on (`waking`, a (B,) bool tensor; None: all), and those it acted
    on in the backward passes of its block (`blocked`; None where unknown: on a GPU, asking would wait
    for the device)."""

    def __init__(self, waking: torch.Tensor | None) -> None:
        self.waking = waking
        self.blocked: torch.Tensor | None = None
        self.known = True

    def saw(self, blocked: torch.Tensor) -> torch.Tensor:
        """Pictures blocked at one clamp, of those still waking; remembered for the block's report. A clamp
        whose first dimension is not the pictures' (a model that folds heads into the batch) acts on all
        its rows, and leaves what was redirected unknown."""
        if self.waking is None or blocked.shape != self.waking.shape:
            self.known = self.known and self.waking is None
        else:
            blocked = blocked & self.waking.to(blocked.device)
        if blocked.device.type != "cpu":
            self.known = False
        if self.known:
            self.blocked = blocked if self.blocked is None else self.blocked | blocked
        return blocked


class _RedirectedClamp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lo: float, hi: float | None, wake: Wake) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi, ctx.wake = lo, hi, wake
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        # aten's own fused ReLU / ReLU6 backward kernels: the usual case costs what a plain ReLU does.
        if ctx.hi is None:
            passed = torch.ops.aten.threshold_backward(grad, x, ctx.lo)
        else:
            passed = torch.ops.aten.hardtanh_backward(grad, x, ctx.lo, ctx.hi)
        # Per picture (of those still waking): nothing got through.
        blocked = ctx.wake.saw(passed.abs().amax(dim=tuple(range(1, x.dim()))) == 0)
        # The usual case is a plain ReLU gradient. Asking costs a CPU nothing, but on a GPU it would
        # wait for the device in every clamp's backward, so there the masked form always runs.
        if x.device.type == "cpu" and not bool(blocked.any()):
            return passed, None, None, None
        # The loss is minimized: a positive gradient lowers a unit, a negative one raises it.
        pushing_out = (x < ctx.lo) & (grad > 0)
        if ctx.hi is not None:
            pushing_out |= (x > ctx.hi) & (grad < 0)
        redirected = grad.masked_fill(pushing_out, 0)
        return torch.where(blocked.view(-1, *[1] * (x.dim() - 1)), redirected, passed), None, None, None


def _clamp_bounds(func, args, kwargs) -> tuple[float, float | None] | None:
    """(lo, hi) when `func(*args, **kwargs)` is a ReLU-like clamp at 0, else None."""
    if func in (F.relu, torch.relu, torch.relu_):
        return 0.0, None
    if func is F.relu6:
        return 0.0, 6.0
    if func is F.hardtanh:
        lo = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
        hi = kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
        return (float(lo), float(hi)) if lo == 0 else None
    return None


class _Redirect(TorchFunctionMode):
    def __init__(self, wake: Wake) -> None:
        super().__init__()
        self.wake = wake

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        bounds = _clamp_bounds(func, args, kwargs)
        x = args[0] if args else None
        if bounds is None or not isinstance(x, torch.Tensor) or x.dim() < 2 or not torch.is_grad_enabled():
            return func(*args, **kwargs)
        # Out of place even for inplace=True: callers use the result.
        return _RedirectedClamp.apply(x, *bounds, self.wake)


@contextlib.contextmanager
def redirected_relu(active: bool | torch.Tensor = True) -> Iterator[Wake]:
    """Within the block, ReLU / ReLU6 pass a redirected gradient to pictures they would block: every
    picture (True), none (False), or those `active` marks ((B,) bool tensor). The `Wake` it gives
    tells, after the backward pass, which pictures were redirected."""
    wake = Wake(active if isinstance(active, torch.Tensor) else None)
    if active is False:
        yield wake
        return
    with _Redirect(wake):
        yield wake
