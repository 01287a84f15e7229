"""Objectives: what the ascent maximizes, as values that add, subtract and scale.

An objective maps the tapped activations {layer: tensor} to one score per batch element (B,); the
render loop maximizes their sum, so each element is driven by its own term. `"layer:channel"` is the
shorthand used on the command line and in share links (`-layer:channel` for the negative).
"""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import FeatvizError
from ..spec.targets import OBJECTIVES, Target, check_objective_layers

KINDS = OBJECTIVES


class Objective:
    """A per-element score function; compose with +, -, * and unary -."""

    def __init__(self, fn: Callable[[dict[str, torch.Tensor]], torch.Tensor], name: str, layers: tuple[str, ...]):
        self.fn, self.name, self.layers = fn, name, layers

    def __call__(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.fn(acts)

    def __add__(self, other: "Objective") -> "Objective":
        return Objective(lambda a: self(a) + other(a), f"{self.name} + {other.name}",
                         tuple(dict.fromkeys(self.layers + other.layers)))

    def __mul__(self, k: float) -> "Objective":
        return Objective(lambda a: k * self(a), f"{k:g} * ({self.name})", self.layers)

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return -1.0 * self

    def __sub__(self, other: "Objective") -> "Objective":
        return self + (-other)

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _per_element(targets: list[Target], score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], name: str,
                 whole_layer: bool = False) -> Objective:
    """Element b scores `score(acts[layer_b][b], channel_b)` (with `whole_layer`, all of
    `acts[layer_b][b]`); grouped by layer so a batch of 80 channels costs one gather per layer, not
    80 small ops."""
    groups: dict[str, tuple[list[int], list[int]]] = {}
    for b, t in enumerate(targets):
        groups.setdefault(t.layer, ([], []))[0].append(b)
        groups[t.layer][1].append(t.channel)
    batch = len(targets)
    # Index tensors built once per device, not every step (on a GPU each build is a host-to-device copy).
    index_cache: dict[tuple[str, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def indices(layer: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if (layer, device) not in index_cache:
            rows, chans = groups[layer]
            index_cache[layer, device] = (torch.tensor(rows, device=device), torch.tensor(chans, device=device))
        return index_cache[layer, device]

    def fn(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        out = None
        for layer in groups:
            act = acts[layer]
            idx, chans = indices(layer, act.device)
            vals = score(act[idx] if whole_layer else act[idx, chans], idx)
            part = torch.zeros(batch, device=act.device, dtype=vals.dtype).index_put((idx,), vals)
            out = part if out is None else out + part
        return out

    return Objective(fn, name, tuple(groups))


def channel(targets: list[Target]) -> Objective:
    """Mean activation of each element's channel over all positions."""
    def score(a, _):
        return a.float().mean(dim=(-2, -1)) if a.dim() == 3 else a.float()
    return _per_element(targets, score, "channel mean")


def neuron(targets: list[Target]) -> Objective:
    """Activation of each element's channel at the centre position."""
    def score(a, _):
        return a[:, a.shape[-2] // 2, a.shape[-1] // 2].float() if a.dim() == 3 else a.float()
    return _per_element(targets, score, "centre neuron")


def logit(targets: list[Target]) -> Objective:
    """Each element's class logit (targets on the LOGITS pseudo-layer)."""
    check_objective_layers("logit", [t.layer for t in targets])
    return _per_element(targets, lambda a, _: a.float(), "class logit")


def layer_energy(targets: list[Target]) -> Objective:
    """Deep Dream's own objective: the mean square of all of each element's layer's activations
    (the target's channel is ignored), so whatever the layer already sees in a picture grows."""
    return _per_element(targets, lambda a, _: a.float().pow(2).flatten(1).mean(dim=1), "layer energy", whole_layer=True)


def direction(targets: list[Target], directions, power: float = 0.0) -> Objective:
    """Each element's direction in its layer's channel space (`directions[b]`, C floats): the mean over
    positions of the activation's dot product with it (a concept of the layer, analysis/concepts.py).
    With `power` > 0, Lucid's variant: the dot product times max(cosine, 0.1) ** power at each position,
    which rewards pointing along the direction over merely growing large."""
    table = torch.as_tensor(directions, dtype=torch.float32)
    if table.dim() != 2 or len(table) != len(targets):
        raise FeatvizError(f"The direction objective needs one direction per picture: {len(targets)} pictures, "
                           f"directions of shape {tuple(table.shape)}.")
    on_device: dict[torch.device, torch.Tensor] = {}

    def score(a, idx):
        d = on_device.setdefault(a.device, table.to(a.device))[idx]  # (n, C)
        a = a.float() if a.dim() == 4 else a.float()[..., None, None]
        dot = torch.einsum("nchw,nc->nhw", a, d)
        if power:
            cos = dot / (a.norm(dim=1) * d.norm(dim=1)[:, None, None]).clamp(min=1e-6)
            dot = dot * cos.clamp(min=0.1) ** power
        return dot.mean(dim=(-2, -1))
    name = "direction" if not power else f"direction x cosine^{power:g}"
    return _per_element(targets, score, name, whole_layer=True)


def diversity(layer: str, weight: float = 1.0) -> Objective:
    """Lucid's diversity term: penalize the cosine similarity of Gram matrices across the batch.
    Couples the batch, so use it for several variants of one channel, not for cached renders."""
    def fn(acts):
        a = acts[layer].float()
        flat = a.flatten(2)
        gram = torch.bmm(flat, flat.transpose(1, 2)).flatten(1)
        gram = torch.nn.functional.normalize(gram, dim=1)
        sim = gram @ gram.T
        batch = a.shape[0]
        off_diag = (sim.sum(dim=1) - sim.diagonal()) / max(batch - 1, 1)
        return -weight * off_diag
    return Objective(fn, f"diversity({layer})", (layer,))


def for_targets(kind: str, targets: list[Target]) -> Objective:
    """The objective named by `kind` ('channel', 'neuron', 'logit') for these targets."""
    builders = {"channel": channel, "neuron": neuron, "logit": logit}
    if kind not in builders:
        raise FeatvizError(f"Unknown objective {kind!r}. Valid objectives: {', '.join(KINDS)}.")
    # Channel and neuron scores read a LOGITS target as its logit, so mixed batches need no split.
    return builders[kind](targets)
