"""Matching the concepts of two layers (of one model or two) on the same photos: each concept's code
map, resampled to the coarser of the two grids (area averages), is a vector over (photo, position);
concepts pair one to one (Hungarian assignment, scipy's linear_sum_assignment) to maximize the sum of
the Pearson correlations of their vectors.

A pair scoring below MATCH_THRESHOLD (0.5) is no match: both concepts are listed unmatched. At r = 0.5
one concept's map accounts for a quarter of the other's variance (r^2 = 0.25), the least that makes
them the same thing seen twice rather than two things that co-occur. Chance does not set it: shuffling
which photo a map belongs to leaves concepts tied to a place in the map (its border, where the zero
padding shows) correlated with themselves (r = 0.96 on Lite0's blocks.3), so that null is no null here.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FeatvizError
from ..models.loading import LoadedModel
from .concepts import check_doc, code_maps
from .concepts_photos import Photos, default_photos, photo_batches

MATCH_THRESHOLD = 0.5


def correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(k, k2) Pearson correlations of the columns of a (n, k) and b (n, k2); 0 for a constant column."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    den = np.outer(na, nb)
    return np.divide(a.T @ b, den, out=np.zeros_like(den), where=den > 0)


def _common(maps: torch.Tensor, grid: tuple[int, int]) -> np.ndarray:
    """(n, k, h, w) -> (n, positions, k) on `grid`, area averages."""
    pooled = F.adaptive_avg_pool2d(maps, grid) if maps.shape[-2:] != grid else maps
    return pooled.flatten(2).transpose(1, 2).double().numpy()


def match_codes(a: np.ndarray, b: np.ndarray, threshold: float | None = None) -> dict:
    """Matches of concept maps a (n, positions, k) and b (n, positions, k2) over the same photos."""
    from scipy.optimize import linear_sum_assignment

    corr = correlations(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]))
    threshold = MATCH_THRESHOLD if threshold is None else float(threshold)
    rows, cols = linear_sum_assignment(-corr)
    pairs = [{"concept": int(r), "concept2": int(c), "score": float(corr[r, c])} for r, c in zip(rows, cols)
             if corr[r, c] >= threshold]
    paired, paired2 = {p["concept"] for p in pairs}, {p["concept2"] for p in pairs}
    return {"pairs": sorted(pairs, key=lambda p: -p["score"]),
            "unmatched": [i for i in range(corr.shape[0]) if i not in paired],
            "unmatched2": [j for j in range(corr.shape[1]) if j not in paired2],
            "threshold": threshold, "samples": int(a.shape[0] * a.shape[1]),
            "correlations": corr.round(4).tolist()}


def match_concepts(model: LoadedModel, doc: dict, model2: LoadedModel, doc2: dict, photos: Photos | None = None,
                   threshold: float | None = None) -> dict:
    """{"pairs": [{"concept", "concept2", "score"}] best first, "unmatched", "unmatched2", "threshold",
    "samples" (photo x position vectors correlated), "correlations" (k x k2)} of two concepts documents,
    on `photos` (default: the first model's built-in photo set) fed to both models."""
    check_doc(model, doc)
    check_doc(model2, doc2)
    if model.in_channels != model2.in_channels:
        raise FeatvizError(f"{model.name!r} reads {model.in_channels}-channel photos and {model2.name!r} "
                           f"{model2.in_channels}-channel ones: match models that see the same photos.")
    photos = default_photos(model, photos)
    maps, maps2 = [], []
    for _, images in photo_batches(photos, model):
        maps.append(code_maps(model, doc, images))
        maps2.append(code_maps(model2, doc2, images))
    a, b = torch.cat(maps), torch.cat(maps2)
    grid = (min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1]))
    return match_codes(_common(a, grid), _common(b, grid), threshold)
