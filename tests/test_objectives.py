"""Objectives end to end: the diversity term (objectives.diversity, Lucid's) makes a batch more varied."""
from __future__ import annotations

import itertools

import pytest
import torch

from featviz_core import RenderSettings, load_model
from featviz_core.models import LayerTap
from featviz_core.optvis import objectives
from featviz_core.optvis.render import render
from featviz_core.spec import Target

pytestmark = pytest.mark.usefixtures("single_thread")


def style_similarity(model, pictures: torch.Tensor, layer: str) -> float:
    """Mean cosine similarity of the pictures' Gram matrices at `layer`, over all pairs: 1 is one style."""
    with torch.no_grad(), LayerTap(model.module, [layer]) as tap:
        acts = tap.run(model.normalize(pictures))[layer].float().flatten(2)
    gram = torch.nn.functional.normalize(torch.bmm(acts, acts.transpose(1, 2)).flatten(1), dim=1)
    return float(sum(gram[i] @ gram[j] for i, j in itertools.combinations(range(len(gram)), 2))
                 / (len(gram) * (len(gram) - 1) / 2))


def test_diversity_makes_a_batch_more_varied():
    model = load_model("tests.tiny_model:make", device="cpu")
    targets = [Target("relu3", c) for c in range(4)]
    settings = RenderSettings(size=32, steps=32)
    plain = objectives.for_targets("channel", targets)

    def final(objective) -> torch.Tensor:
        return list(render(model, targets, settings, objective=objective))[-1].snapshot.float()

    without = style_similarity(model, final(plain), "relu2")
    with_diversity = style_similarity(model, final(plain + objectives.diversity("relu2", 10.0)), "relu2")
    assert without > 0.8  # without the term the four pictures share one style (measured: 0.88)
    assert with_diversity < without - 0.2  # with it they part (measured: 0.51)
