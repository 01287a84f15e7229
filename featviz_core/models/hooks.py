"""Capture activations at named layers, stopping the forward pass once the deepest one is reached."""
from __future__ import annotations

import threading
from typing import Iterable

import torch
from torch import nn

from ..spec.targets import LOGITS
from .folding import raw_output

ADAPTER = "featviz_output_adapter"  # attribute of a module: (layer name, output) -> (B, C, H, W) output


class _StopForward(Exception):
    """Raised from a hook to skip the rest of the network once every tapped layer has fired."""


class LayerTap:
    """Context manager that records the outputs of `names` (module names, or LOGITS); for a capped
    clamp such as ReLU6, its input; through the model's output adapter (tokens.py), if it has one.

    With only conv layers tapped, the forward pass stops right after the last of them fires, so
    early layers cost a fraction of a full pass. Hooks are always removed on exit.

    The hooks sit on a model that may be shared (the dashboard keeps one per server), so they act
    only during this tap's own `run` on its own thread: another session's render running at the same
    time, or a render abandoned mid-way whose tap has not exited yet, must not record into this tap
    or stop the other's forward pass.
    """

    def __init__(self, model: nn.Module, names: Iterable[str]):
        self.model = model
        self.names = list(dict.fromkeys(names))
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list = []
        self._wanted = {n for n in self.names if n != LOGITS}
        self._stop_early = LOGITS not in self.names
        self._running_on: int | None = None  # the thread inside run(), if any
        self._adapt = getattr(model, ADAPTER, None)  # a token model's: tokens laid back on their grid

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
            # A conv with a batch norm folded into it gives back its own output.
            out = inputs[0] if isinstance(module, nn.Hardtanh) else raw_output(module, output)
            self.outputs[name] = self._adapt(name, out) if self._adapt is not None else out
            if self._stop_early and self._wanted.issubset(self.outputs):
                raise _StopForward

        return hook

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One forward pass; returns {layer name: output}."""
        self.outputs = {}
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
