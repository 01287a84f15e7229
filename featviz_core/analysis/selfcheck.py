"""Self-check: does a picture excite its channel more than natural photos do?

Natural statistics: every channel's mean activation on random crops of the photos scikit-image ships
(median and MAD-based robust spread, per layer and input size, cached in the store). A picture is
fed under random jitter / scale / rotation (so a picture that only works pixel-exactly scores low),
its channel's activation is turned into a robust z-score, and the channel is ranked against every
other channel of the layer on the same picture (rank 1: the picture is most specific to its channel).
The same statistics turn activation curves into z-scores, putting early and deep layers on one axis.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..inputs.photos import NATURAL_PHOTOS, skimage_photo
from ..models.hooks import LayerTap
from ..models.loading import LoadedModel
from ..optvis import transforms
from ..store.disk import ChannelResult, Store
from ..store.lookup import cached_json, lookup_json, store_json

CROPS_PER_PHOTO = 6
STATS_VERSION = 2  # 2: capped clamps (ReLU6) are read before the clamp


@dataclass(frozen=True)
class LayerStats:
    median: np.ndarray  # (channels,)
    scale: np.ndarray  # (channels,) 1.4826 * MAD, floored


@dataclass(frozen=True)
class CheckScore:
    layer: str
    channel: int
    activation: float  # mean over random transforms of the channel's mean activation
    z: float  # robust z-score against natural photos
    rank: int  # 1 = the picture's own channel has the highest z of its layer
    channels: int
    layer_z: tuple[float, ...] = field(default=(), compare=False, repr=False)  # every channel's z on this picture


def neighbours(score: CheckScore, count: int = 6) -> list[int]:
    """The channels of the layer that the picture excites most after its own (highest z first, ties
    by index): what else responds to the same pattern, whether or not the picture ranked first."""
    order = np.argsort(-np.asarray(score.layer_z, dtype=np.float64), kind="stable")
    return [int(c) for c in order if c != score.channel][:count]


def natural_photos(channels: int = 3) -> list[np.ndarray]:
    """The photos bundled with scikit-image, as HxWxC uint8 with the model's channel count."""
    photos = []
    for name in NATURAL_PHOTOS:
        img = skimage_photo(name)
        if channels == 1:
            img = np.round(img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        photos.append(img.astype(np.uint8))
    return photos


def _crops(size: int, channels: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    out = []
    for photo in natural_photos(channels):
        t = torch.from_numpy(photo).permute(2, 0, 1).float().unsqueeze(0) / 255
        h, w = photo.shape[:2]
        for _ in range(CROPS_PER_PHOTO):
            side = int(min(h, w) * rng.uniform(0.4, 1.0))
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            crop = t[..., y:y + side, x:x + side]
            out.append(F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(out)


@torch.no_grad()
def _channel_means(model: LoadedModel, images: torch.Tensor, layer: str, chunk: int = 32) -> torch.Tensor:
    rows = []
    with LayerTap(model.module, [layer]) as tap:
        for part in images.split(chunk):
            act = tap.run(model.normalize(part.to(model.device)))[layer].float()
            rows.append((act.mean(dim=(-2, -1)) if act.dim() == 4 else act).cpu())
    return torch.cat(rows)


STATS_SHAPE = {"median": [float], "scale": [float]}  # one number per channel each


def natural_means(model: LoadedModel, layer: str, size: int) -> np.ndarray:
    """(crops, channels) mean activations of `layer` on the natural photo crops at `size` px."""
    return _channel_means(model, _crops(size, model.in_channels), layer).numpy().astype(np.float64)


def robust_stats(acts: np.ndarray) -> dict:
    """Per column: median and 1.4826 x MAD, floored."""
    median = np.median(acts, axis=0)
    mad = 1.4826 * np.median(np.abs(acts - median), axis=0)
    # A channel that barely varies on photos would give huge z for any change: floor its spread.
    scale = np.maximum(mad, np.maximum(0.05 * acts.std(axis=0), 1e-3))
    return {"median": median.tolist(), "scale": scale.tolist()}


def _measure_stats(model: LoadedModel, layer: str, size: int) -> dict:
    return robust_stats(natural_means(model, layer, size))


def natural_stats(model: LoadedModel, layer: str, size: int, store: Store | None = None) -> LayerStats:
    """Per-channel median and robust spread of `layer` on natural photo crops at `size` px."""
    channels = model.info(layer).channels
    doc = cached_json(store, ("natural", STATS_VERSION, model.digest, layer, size),
                      lambda: _measure_stats(model, layer, size), STATS_SHAPE,
                      valid=lambda d: len(d["median"]) == len(d["scale"]) == channels)
    return LayerStats(np.asarray(doc["median"]), np.asarray(doc["scale"]))


def curve_z(curve: Sequence[float], stats: LayerStats, channel: int) -> np.ndarray:
    """An activation curve in units of natural-photo spread above the natural median."""
    return (np.asarray(curve, dtype=np.float64) - stats.median[channel]) / stats.scale[channel]


def view_means(model: LoadedModel, pictures: Sequence[np.ndarray], layer: str, samples: int = 8,
               seed: int = 0) -> np.ndarray:
    """(pictures, channels) mean activations of pictures (HxWxC uint8, all one size), each averaged over
    `samples` random jitter / scale / rotation views (a picture that works only pixel-exactly scores low)."""
    batch = torch.stack([torch.from_numpy(np.array(p)).permute(2, 0, 1).float() / 255 for p in pictures])
    gens = [torch.Generator().manual_seed(seed + i) for i in range(samples)]
    params = transforms.draw_params(transforms.LUCID, 1, gens)[0]  # (samples, 5)
    views = torch.cat([transforms.apply(batch, transforms.LUCID, params[i].expand(len(batch), 5))
                       for i in range(samples)])
    return _channel_means(model, views, layer).view(samples, len(batch), -1).mean(dim=0).numpy()


def score_pictures(model: LoadedModel, pictures: Sequence[np.ndarray], layer: str, channels: Sequence[int],
                   store: Store | None = None, samples: int = 8, seed: int = 0) -> list[CheckScore]:
    """Self-check several pictures of one layer (HxWxC uint8, all the same size)."""
    stats = natural_stats(model, layer, np.asarray(pictures[0]).shape[1], store)
    acts = view_means(model, pictures, layer, samples, seed)
    z = (acts - stats.median) / stats.scale
    scores = []
    for b, channel in enumerate(channels):
        own = z[b, channel]
        scores.append(CheckScore(layer, int(channel), float(acts[b, channel]), float(own), int((z[b] > own).sum()) + 1,
                                 z.shape[1], tuple(float(v) for v in z[b])))
    return scores


SCORE_SHAPE = {"z": float, "rank": int, "channels": int, "layer_z": [float]}  # anything else is a miss
CHECK_CHUNK = 16  # pictures self-checked at once (8 transformed views each)


def _score_doc(score: CheckScore) -> dict:
    return {"activation": score.activation, "z": score.z, "rank": score.rank, "channels": score.channels,
            "layer_z": list(score.layer_z)}


def _score_key(result: ChannelResult) -> tuple:
    """A picture's self-check in the store: by its key and STATS_VERSION (new statistics miss)."""
    return ("check", STATS_VERSION, result.key)


def stored_scores(results: Sequence[ChannelResult], store: Store | None) -> list[CheckScore | None]:
    """The self-checks the store holds for these pictures (None where it holds none)."""
    docs = [lookup_json(store, _score_key(r), SCORE_SHAPE) for r in results]
    return [None if d is None else CheckScore(r.layer, r.channel, float(d.get("activation", float("nan"))), d["z"],
                                              d["rank"], d["channels"], tuple(d["layer_z"]))
            for r, d in zip(results, docs)]


def picture_scores(model: LoadedModel, layer: str, results: Sequence[ChannelResult], store: Store | None = None,
                   done: Callable[[int], None] | None = None) -> list[CheckScore]:
    """The self-check of rendered pictures of one layer, each kept in the store (a rerun is
    instant). `done(n)` hears as each n pictures are scored (a progress bar)."""
    scores = stored_scores(results, store)
    todo = [i for i, score in enumerate(scores) if score is None]
    if done:
        done(len(results) - len(todo))
    for start in range(0, len(todo), CHECK_CHUNK):
        part = todo[start:start + CHECK_CHUNK]
        fresh = score_pictures(model, [results[i].image for i in part], layer, [results[i].channel for i in part],
                               store)
        for i, score in zip(part, fresh):
            scores[i] = score
            store_json(store, _score_key(results[i]), _score_doc(score))
        if done:
            done(len(part))
    return scores
