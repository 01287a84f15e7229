"""The CKA estimator and its interval, on Gram matrices only (numpy, no torch: the dashboard names a
stored matrix by `similarity_key` without importing the model code).

Linear CKA (Kornblith et al. 2019) is HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)). The plain (biased) HSIC
<HKH, HLH> counts each example's similarity with itself, which grows with the feature count: over few
photos far-apart wide layers read alike (Lite0 blocks.1 ~ blocks.5 at 128 px: 0.63 over 98 images, 0.53
over 600). The unbiased HSIC of Song et al. (2012), as minibatch CKA uses it (Nguyen et al. 2021),
zeroes the Grams' diagonals and reads 0.53 and 0.51:

    HSIC_1(K, L) = [tr(K~L~) + (1'K~1)(1'L~1) / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))

    cka = cka_matrix_of(grams, grams)      # every pair of a list of n x n Grams, at once
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import FeatvizError

CKA_VERSION = 2  # bump when the same request would give other Grams or other numbers (2: debiased HSIC)
MIN_EXAMPLES = 4  # the unbiased HSIC divides by n - 3
RESAMPLES = 200  # half-samples behind each interval
LEVEL = 0.95  # the interval's coverage


def _zeroed(grams: Sequence[np.ndarray]) -> np.ndarray:
    stack = np.array([np.asarray(g, dtype=np.float64) for g in grams])  # (layers, n, n), a copy
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2] or stack.shape[1] < MIN_EXAMPLES:
        raise ValueError(f"CKA needs n x n Grams over the same n >= {MIN_EXAMPLES} examples, got {stack.shape}")
    idx = np.arange(stack.shape[1])
    stack[:, idx, idx] = 0.0
    return stack


def hsic_matrix(grams_a: Sequence[np.ndarray], grams_b: Sequence[np.ndarray]) -> np.ndarray:
    """HSIC_1 (above) between every Gram of `grams_a` and every Gram of `grams_b`: (len a, len b)."""
    ka, kb = _zeroed(grams_a), _zeroed(grams_b)
    if ka.shape[1] != kb.shape[1]:
        raise ValueError(f"CKA needs Grams over the same examples, got n={ka.shape[1]} and n={kb.shape[1]}")
    n = ka.shape[1]
    rows_a, rows_b = ka.sum(axis=2), kb.sum(axis=2)  # K~1 per layer: 1'K~L~1 = (K~1).(L~1), K~ symmetric
    trace = ka.reshape(len(ka), -1) @ kb.reshape(len(kb), -1).T  # tr(K~L~) = sum(K~ * L~)
    sums = np.outer(rows_a.sum(axis=1), rows_b.sum(axis=1)) / ((n - 1) * (n - 2))
    return (trace + sums - 2.0 / (n - 2) * rows_a @ rows_b.T) / (n * (n - 3))


def _self_hsic(grams: Sequence[np.ndarray]) -> np.ndarray:
    """HSIC_1(K, K) per Gram; 0 where it is within rounding of 0 (a constant layer's is exactly 0)."""
    k = _zeroed(grams)
    n = k.shape[1]
    own = np.diag(hsic_matrix(grams, grams))
    return np.where(own > 1e-9 * (k * k).sum(axis=(1, 2)) / (n * (n - 3)), own, 0.0)


def cka_matrix_of(grams_a: Sequence[np.ndarray], grams_b: Sequence[np.ndarray]) -> np.ndarray:
    """Debiased linear CKA between every Gram of `grams_a` and every Gram of `grams_b`. 0 where a
    layer's own HSIC is not positive (constant over the examples: it carries nothing to share)."""
    self_a = _self_hsic(grams_a)
    self_b = self_a if grams_b is grams_a else _self_hsic(grams_b)
    norm = np.sqrt(np.outer(self_a, self_b))
    cross = hsic_matrix(grams_a, grams_b)
    return np.divide(cross, norm, out=np.zeros_like(cross), where=norm > 0)


def linear_cka(gram_x: np.ndarray, gram_y: np.ndarray) -> float:
    """Debiased linear CKA of two n x n Grams over the same examples."""
    return float(cka_matrix_of([gram_x], [gram_y])[0, 0])


def check_photos(photos: int, per_photo: int) -> None:
    """Refuses a photo set whose half-samples (cka_interval) would hold fewer than MIN_EXAMPLES images."""
    if (photos // 2) * per_photo < MIN_EXAMPLES:
        least = 2 * -(-MIN_EXAMPLES // per_photo)
        raise FeatvizError(f"Layer similarity needs at least {least} photos for its interval; this set has {photos}.")


def cka_interval(grams_a: Sequence[np.ndarray], grams_b: Sequence[np.ndarray], groups: Sequence[int],
                 resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(len a, len b, 2): each cell's LEVEL interval over half-samples of the photos.

    A resample draws half of the photos without replacement (a photo with all its crops: crops of one
    photo are not independent examples), not n with replacement: a duplicated example would put its
    self-similarity (the Gram's diagonal, which the debiased HSIC leaves out on purpose) back off the
    diagonal and pull CKA up the way the biased estimator does. Half-samples without replacement spread
    as the full sample does ((s^2/m)(1 - m/n) = s^2/n for a mean at m = n/2). A ratio of unbiased HSICs
    is not unbiased itself, and over half the photos it reads higher (Lite0, 14 photos: by 0.07, up to 0.17),
    so the interval takes the half-samples' spread around their median and centres it on the estimate."""
    groups = np.asarray(groups)
    photos = np.unique(groups)
    check_photos(len(photos), len(groups) // len(photos))
    rng = np.random.default_rng(seed)
    za, zb = [np.asarray(g, dtype=np.float64) for g in grams_a], [np.asarray(g, dtype=np.float64) for g in grams_b]
    values = []
    for _ in range(resamples):
        idx = np.flatnonzero(np.isin(groups, rng.choice(photos, len(photos) // 2, replace=False)))
        sub = np.ix_(idx, idx)
        values.append(cka_matrix_of([g[sub] for g in za], [g[sub] for g in zb]))
    tail, middle = (1 - LEVEL) / 2 * 100, np.median(values, axis=0)
    estimate = cka_matrix_of(za, zb)
    lo, hi = (estimate + np.percentile(values, q, axis=0) - middle for q in (tail, 100 - tail))
    return np.stack([np.clip(lo, -1, 1), np.clip(hi, -1, 1)], axis=-1)


def similarity_key(model, layers: Sequence[str], model2, layers2: Sequence[str], photos) -> tuple:
    """The store key of a CKA matrix: version, both models' weights digests and layers, the photos (any
    object with `digest` and `in_channels`: a loaded model or its stored card; a PhotoSet)."""
    return ("cka", CKA_VERSION, model.digest, ",".join(layers), model2.digest, ",".join(layers2),
            photos.identity(model.in_channels), photos.identity(model2.in_channels))
