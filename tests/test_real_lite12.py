"""End to end on EfficientNet-Lite1 and -Lite2 with their packaged ImageNet weights: pictures checked
against natural photos as tests/test_real_lite0.py checks Lite0's (z, rank, beyond every photo), at a
smaller size and fewer steps to stay quick."""
from __future__ import annotations

import pytest

from featviz_core import RenderSettings, Store, collect, load_model, render_channels
from featviz_core.analysis import selfcheck
from tests.test_real_lite0 import _natural_channel_means

LAYER = "blocks.3"
CHANNELS = [0, 1]
SETTINGS = RenderSettings(size=128, steps=48)


@pytest.mark.real_model
@pytest.mark.usefixtures("single_thread")
@pytest.mark.parametrize("name, size, channels", [("lite1", 240, 80), ("lite2", 260, 88)])
def test_lite1_and_lite2_pictures_excite_their_channels_beyond_natural_photos(tmp_path, name, size, channels):
    model = load_model(name, device="cpu")
    assert model.input_size == size and model.layers[LAYER].channels == channels
    store = Store(str(tmp_path / "cache"))
    try:
        results = collect(render_channels(model, [(LAYER, c) for c in CHANNELS], SETTINGS, store))
        scores = selfcheck.score_pictures(model, [r.image for r in results], LAYER, CHANNELS, store)
    finally:
        store.close()
    natural = _natural_channel_means(model, LAYER, SETTINGS.size)
    report = [(s.channel, round(s.z, 1), s.rank, round(s.activation, 2), round(float(natural[:, s.channel].max()), 2))
              for s in scores]
    for r, s in zip(results, scores):
        assert not r.dead and r.curve[-1] > r.curve[0]
        assert r.image.std() > 20, f"{r.label}: near-uniform picture (std {r.image.std():.1f})"
        assert s.channels == channels and s.z > 2 and s.rank <= 3, report
        assert s.activation > natural[:, s.channel].max(), report
    assert sum(s.rank == 1 for s in scores) >= len(scores) - 1, report
    print(name, report)
