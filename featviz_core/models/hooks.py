"""Capture activations at named layers (and replace what the layers after one see), stopping the forward
pass once the deepest one is reached."""
from __future__ import annotations

import threading
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from ..spec.targets import LOGITS
from .folding import raw_output, refold

ADAPTER = "featviz_output_adapter"  # attribute of a module: (layer name, output) -> (B, C, H, W) output
Swap = Callable[[torch.Tensor], torch.Tensor]  # what the layers after a layer see instead of its output


def laid_out(model: nn.Module, name: str, output: torch.Tensor) -> torch.Tensor:
    """A layer's raw output (or a tensor of its shape: a gradient, a tangent) as LayerTap records it:
    through the model's output adapter (a token layer's patch tokens on their grid, as a view of the
    tokens: writing into it writes them), else as it is."""
    adapt = getattr(model, ADAPTER, None)
    return adapt(name, output) if adapt is not None else output


class _StopForward(Exception):
    """Raised from a hook to skip the rest of the network once every tapped layer has fired."""


class LayerTap:
    """Context manager that records the outputs of `names` (module names, or LOGITS); for a capped
    clamp such as ReLU6, its input; through the model's output adapter (tokens.py), if it has one.

    `swap` ({name: function of the output}) replaces a layer's output by what its function returns:
    that is what the layers after it see, what the tap records for it, and, raw (before the adapter),
    what `sent[name]` holds, so a gradient can be taken with respect to it. Circuits use it for a
    leaf to differentiate by, a tangent for forward-mode autograd, and ablation.

    With only conv layers tapped, the forward pass stops right after the last of them fires, so
    early layers cost a fraction of a full pass. Hooks are always removed on exit.

    The hooks sit on a model that may be shared (the dashboard keeps one per server), so they act
    only during this tap's own `run` on its own thread: another session's render running at the same
    time, or a render abandoned mid-way whose tap has not exited yet, must not record into this tap
    or stop the other's forward pass.
    """

    def __init__(self, model: nn.Module, names: Iterable[str], swap: Mapping[str, Swap] | None = None):
        self.model = model
        self.names = list(dict.fromkeys(names))
        self.outputs: dict[str, torch.Tensor] = {}
        self.swap, self.sent = dict(swap or {}), {}
        self._handles: list = []
        self._wanted = {n for n in self.names if n != LOGITS}
        self._stop_early = LOGITS not in self.names
        self._running_on: int | None = None  # the thread inside run(), if any

    def __enter__(self) -> "LayerTap":
        modules = dict(self.model.named_modules())
        for name in self._wanted:
            self._handles.append(modules[name].register_forward_hook(self._hook_for(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook_for(self, name: str):
        def hook(module, inputs, output):
            if self._running_on != threading.get_ident():
                return
            # A layer that is a capped clamp (ReLU6, Lite0's bn1 / bn2 once batch norms are folded) is
            # read before the clamp: at the cap it passes no gradient, so the ascent would stall on a
            # flat gray picture, and every picture that reaches the cap would score the same.
            # A conv with a batch norm folded into it gives back its own output; a swap replaces that
            # output, and the layers after it see the replacement folded again.
            out = inputs[0] if isinstance(module, nn.Hardtanh) else raw_output(module, output)
            if name in self.swap and isinstance(output, torch.Tensor):
                out = self.sent[name] = self.swap[name](raw_output(module, output))
                output = refold(module, out)
            self.outputs[name] = laid_out(self.model, name, out)
            if self._stop_early and self._wanted.issubset(self.outputs):
                raise _StopForward
            return output if name in self.sent else None

        return hook

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One forward pass; returns {layer name: output}."""
        self.outputs, self.sent = {}, {}
        self._running_on = threading.get_ident()
        try:
            out = self.model(x)
        except _StopForward:
            return self.outputs
        finally:
            self._running_on = None
        if LOGITS in self.names:
            self.outputs[LOGITS] = out
        return self.outputs
