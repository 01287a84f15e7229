"""Dictionary learning on an (N, C) sample of a layer's activations: k concepts, each a direction in
the channel basis with a non-negative code per position.

Two methods, picked by the sign of what they factor:

- `nmf` (scikit-learn's NMF, `init="nndsvda"`: deterministic, no dead atoms) for non-negative layers,
  as Lucid's Building Blocks factor post-ReLU layers. A layer read before its ReLU6 clamp (how the
  project reads every capped clamp, hooks.LayerTap) is clipped at 0 first: what the next layer sees is
  max(0, x) (the cap at 6 aside), so the negative part carries nothing downstream and NMF needs x >= 0.
- `sae`, a small TopK sparse autoencoder in torch, for signed layers (linear bottlenecks such as
  Lite0's blocks.N, ViT tokens). NMF would have to throw away the negative half of such a layer, and
  the alternatives cost more than they give: semi-NMF's multiplicative updates converge slowly and
  depend on their start, and the `overcomplete` package pulls opencv, matplotlib and timm. A TopK SAE
  is some 30 lines here: codes = TopK(ReLU(W_e (x - mean) + b)), x ~ mean + codes @ atoms, with unit
  atoms, `topk` = max(1, k // 4) active concepts per position, atoms started from both ends of the
  top principal axes (deterministic, as NMF's nndsvda start is) and dead ones restarted on the
  worst-reconstructed samples.

`auto` picks nmf for a clamp read before its clamp, or for a layer with under 1 % negative values,
and sae otherwise. A fitted dictionary is a plain `codec` dict (JSON), so codes of any new
activations (`encode`) come from the concepts document alone.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ..errors import FeatvizError, unknown_choice

METHODS = ("auto", "nmf", "sae")
NEGATIVE_SHARE = 0.01  # auto: a layer with at most this share of negative values is non-negative
TOP_CHANNELS = 8  # channels listed per concept
SAE_EPOCHS = 40
SAE_BATCH = 1024
NNLS_STEPS = 150  # multiplicative updates of a fixed-dictionary NMF code


def check_method(method: str) -> None:
    if method not in METHODS:
        raise unknown_choice("concept method", method, METHODS)


def pick_method(method: str, x: torch.Tensor, clamp: bool) -> str:
    """The method `method` names for activations `x` (N, C); `clamp`: the layer is a capped clamp read before it."""
    check_method(method)
    if method != "auto":
        return method
    return "nmf" if clamp or float((x < 0).float().mean()) <= NEGATIVE_SHARE else "sae"


def topk_size(k: int) -> int:
    return max(1, k // 4)


def fit_nmf(x: torch.Tensor, k: int, seed: int) -> dict:
    """The codec of scikit-learn's NMF of max(x, 0)."""
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    data = x.clamp(min=0).double().numpy()
    if not data.any():
        raise FeatvizError("The layer is never positive on these photos: NMF has nothing to factor; use --method sae.")
    if k > min(data.shape):  # nndsvda starts from an SVD: at most as many parts as channels (and positions)
        raise FeatvizError(f"NMF finds at most {min(data.shape)} concepts in this layer ({data.shape[1]} channels, "
                           f"{data.shape[0]} positions); choose k from 1 to {min(data.shape)}, or --method sae.")
    model = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=300, tol=1e-4)
    with warnings.catch_warnings():  # stopping at max_iter is a budget, not a failure: the R^2 says how good
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(data)
    return {"kind": "nmf", "atoms": model.components_.tolist()}


def _restart_dead(atoms: torch.Tensor, enc: torch.Tensor, fired: torch.Tensor, x: torch.Tensor,
                  recon: torch.Tensor) -> None:
    """Atoms that never fired in an epoch restart on the samples reconstructed worst."""
    dead = (~fired).nonzero().flatten()
    if len(dead):
        worst = (x - recon).pow(2).sum(1).topk(len(dead)).indices
        fresh = torch.nn.functional.normalize(x[worst] - recon[worst], dim=1)
        atoms.data[dead], enc.data[dead] = fresh, fresh


def _svd_start(data: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """The atoms' start, NNDSVD's idea for signed data: the positive and the negative end of each of the
    top principal axes (a code is >= 0, so each end is its own concept). Deterministic, so the seed only
    orders the samples: learned again with another seed, a layer gives the same concepts (tested).
    Past 2 x C atoms, random samples."""
    axes = torch.linalg.eigh(data.T.double() @ data.double()).eigenvectors.flip(1).T.float()  # largest first
    ends = torch.stack([axes, -axes], dim=1).reshape(-1, data.shape[1])[:k]
    extra = data[torch.randperm(len(data), generator=gen)[:k - len(ends)]]
    return torch.nn.functional.normalize(torch.cat([ends, extra]), dim=1)


def fit_sae(x: torch.Tensor, k: int, seed: int) -> dict:
    """The codec of a TopK sparse autoencoder trained on x (N, C) with Adam."""
    gen = torch.Generator().manual_seed(seed)
    x = x.float()
    center = x.mean(0)
    scale = float((x - center).pow(2).sum(1).mean().sqrt()) or 1.0
    data = (x - center) / scale  # unit mean square norm: one learning rate for every layer
    if len(data) < k:
        raise FeatvizError(f"{len(data)} positions are too few for {k} concepts: choose a smaller k.")
    start = _svd_start(data, k, gen)
    atoms, enc = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    bias = torch.nn.Parameter(torch.zeros(k))
    opt = torch.optim.Adam([atoms, enc, bias], lr=3e-3)
    topk = topk_size(k)
    with torch.enable_grad():
        for _ in range(SAE_EPOCHS):
            fired = torch.zeros(k, dtype=torch.bool)
            for rows in torch.randperm(len(data), generator=gen).split(SAE_BATCH):
                codes = _topk_codes(data[rows], enc, bias, topk)
                loss = (codes @ atoms - data[rows]).pow(2).sum(1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    atoms.data = torch.nn.functional.normalize(atoms.data, dim=1)
                    fired |= (codes > 0).any(0)
            with torch.no_grad():
                _restart_dead(atoms, enc, fired, data, _topk_codes(data, enc, bias, topk) @ atoms)
    return {"kind": "sae", "center": center.tolist(), "encoder": (enc.detach() / scale).tolist(),
            "bias": bias.detach().tolist(), "atoms": (atoms.detach() * scale).tolist(), "topk": topk}


def _topk_codes(x: torch.Tensor, enc: torch.Tensor, bias: torch.Tensor, topk: int) -> torch.Tensor:
    pre = torch.relu(x @ enc.T + bias)
    top = pre.topk(min(topk, pre.shape[1]), dim=1)
    return torch.zeros_like(pre).scatter(1, top.indices, top.values)


def _nnls(x: torch.Tensor, atoms: torch.Tensor) -> torch.Tensor:
    """argmin_{c >= 0} |x - c atoms|^2 for x >= 0, atoms >= 0, by Lee-Seung multiplicative updates."""
    gram, target = atoms @ atoms.T, x @ atoms.T
    codes = target.clamp(min=0) / gram.diagonal().clamp(min=1e-12)
    for _ in range(NNLS_STEPS):
        codes = codes * target / (codes @ gram).clamp(min=1e-12)
    return codes


def encode(codec: dict, x: torch.Tensor) -> torch.Tensor:
    """Codes (N, k) >= 0 of activations x (N, C) under a fitted codec."""
    x = x.float()
    if codec["kind"] == "nmf":
        return _nnls(x.clamp(min=0), torch.tensor(codec["atoms"], dtype=torch.float32))
    center = torch.tensor(codec["center"], dtype=torch.float32)
    return _topk_codes(x - center, torch.tensor(codec["encoder"], dtype=torch.float32),
                       torch.tensor(codec["bias"], dtype=torch.float32), int(codec["topk"]))


def decode(codec: dict, codes: torch.Tensor) -> torch.Tensor:
    recon = codes @ torch.tensor(codec["atoms"], dtype=torch.float32)
    return recon + torch.tensor(codec["center"], dtype=torch.float32) if codec["kind"] == "sae" else recon


def factored(codec: dict, x: torch.Tensor) -> torch.Tensor:
    """What the codec reconstructs: the activations, clipped at 0 for NMF."""
    return x.float().clamp(min=0) if codec["kind"] == "nmf" else x.float()


def r2_score(codec: dict, x: torch.Tensor) -> float:
    """1 - SSE / SST over the rows of x: the share of the variance (about the mean) the codes explain."""
    target = factored(codec, x).double()
    sse = float((target - decode(codec, encode(codec, x)).double()).pow(2).sum())
    sst = float((target - target.mean(0)).pow(2).sum())
    return 1.0 - sse / sst if sst > 0 else 0.0


def describe(codec: dict, x: torch.Tensor) -> tuple[dict, list[dict]]:
    """The codec with its concepts sorted by importance (most first), and each concept's entry:
    unit direction, importance (its share of the summed |code| x |atom| over the rows of x), top channels."""
    atoms = torch.tensor(codec["atoms"], dtype=torch.float64)
    norms = atoms.norm(dim=1).clamp(min=1e-12)
    mass = encode(codec, x).double().sum(0) * norms
    share = mass / mass.sum() if float(mass.sum()) > 0 else torch.full_like(mass, 1 / len(mass))
    order = torch.argsort(-share, stable=True).tolist()
    codec = {key: ([value[i] for i in order] if key in ("atoms", "encoder", "bias") else value)
             for key, value in codec.items()}
    concepts = []
    for rank, i in enumerate(order):
        direction = (atoms[i] / norms[i]).numpy()
        top = np.argsort(-np.abs(direction), kind="stable")[:TOP_CHANNELS]
        concepts.append({"concept": rank, "importance": float(share[i]), "direction": direction.tolist(),
                         "channels": [{"channel": int(c), "weight": float(direction[c])} for c in top]})
    return codec, concepts


def fit(method: str, x: torch.Tensor, k: int, seed: int) -> dict:
    """The codec of `method` ('nmf' or 'sae') with k concepts on x (N, C)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fit_nmf(x, k, seed) if method == "nmf" else fit_sae(x, k, seed)
