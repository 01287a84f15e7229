"""End to end on the real default model: EfficientNet-Lite0 with its packaged ImageNet weights,
default render settings, pictures checked against natural photos."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from featviz_core import RenderSettings, Store, collect, load_model, render_channels
from featviz_core.analysis import selfcheck
from featviz_core.models.hooks import LayerTap

LAYER = "blocks.3"
CHANNELS = [0, 1, 2, 3]


def _natural_channel_means(model, layer: str, size: int) -> np.ndarray:
    """(pictures, channels) mean activations on the bundled photos: each photo whole (centre square)
    and as four corner crops of 60 %, resized to `size`."""
    views = []
    for photo in selfcheck.natural_photos(model.in_channels):
        t = torch.from_numpy(photo).permute(2, 0, 1).float().unsqueeze(0) / 255
        h, w = photo.shape[:2]
        side, part = min(h, w), int(0.6 * min(h, w))
        boxes = [((h - side) // 2, (w - side) // 2, side), (0, 0, part), (0, w - part, part),
                 (h - part, 0, part), (h - part, w - part, part)]
        for y, x, s in boxes:
            views.append(F.interpolate(t[..., y:y + s, x:x + s], size=(size, size), mode="bilinear",
                                       antialias=True, align_corners=False))
    with torch.no_grad(), LayerTap(model.module, [layer]) as tap:
        acts = tap.run(model.normalize(torch.cat(views)))[layer]
    return acts.float().mean(dim=(-2, -1)).numpy()


@pytest.mark.real_model
@pytest.mark.usefixtures("single_thread")  # 6x faster than two threads when the 2 cores are busy
def test_lite0_pictures_excite_their_channels_beyond_natural_photos(tmp_path):
    model = load_model("lite0", device="cpu")
    settings = RenderSettings()  # the defaults: fourier, 224 px, 96 steps
    store = Store(str(tmp_path / "cache"))
    try:
        results = collect(render_channels(model, [(LAYER, c) for c in CHANNELS], settings, store))
        assert [r.channel for r in results] == CHANNELS
        pictures = [r.image for r in results]
        scores = selfcheck.score_pictures(model, pictures, LAYER, CHANNELS, store)
    finally:
        store.close()
    natural = _natural_channel_means(model, LAYER, settings.size)
    assert natural.shape == (len(selfcheck.NATURAL_PHOTOS) * 5, 80)

    report = [(s.channel, round(s.z, 1), s.rank, round(s.activation, 2), round(float(natural[:, s.channel].max()), 2))
              for s in scores]
    for r, s in zip(results, scores):
        assert r.image.shape == (settings.size, settings.size, 3) and not r.dead
        assert r.curve[-1] > r.curve[0]
        assert r.image.std() > 20, f"{r.label}: near-uniform picture (std {r.image.std():.1f})"
        assert s.channels == 80 and s.channel == r.channel
        assert s.z > 2, report
        assert s.activation > natural[:, s.channel].max(), report
        assert s.rank <= 3, report
    assert sum(s.rank == 1 for s in scores) >= len(scores) - 1, report
