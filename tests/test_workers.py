"""backends.run_work in this process: every item runs once on one loaded model and comes back with its
index; ModelSource loads the same network the driver has; Ray asked for but missing says how to install it."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest
import torch

from featviz_core import FeatvizError
from featviz_core.backends import ModelSource, Work, run_work

from .conftest import TINY, count_forwards

pytestmark = pytest.mark.usefixtures("single_thread")


@dataclass(frozen=True)
class Logits:
    """The tiny model's logits on a seeded random picture, as a plain list."""

    seed: int
    units: int = 1

    def run(self, model):
        x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(self.seed))
        with torch.no_grad():
            return model.module(model.normalize(x)).flatten().tolist()


def test_in_process_runs_every_item_once_on_the_given_model(tiny):
    items = [Logits(seed) for seed in (3, 1, 4, 1)]
    assert all(isinstance(item, Work) for item in items)
    with count_forwards(tiny.module) as calls:
        results = list(run_work(ModelSource(TINY, device="cpu"), items, model=tiny))
    assert [i for i, _ in results] == [0, 1, 2, 3] and len(calls) == 4
    assert results[1][1] == results[3][1] != results[0][1]  # the same item twice, the same answer
    assert results[2][1] == Logits(4).run(tiny)
    assert list(run_work(ModelSource(TINY), [], model=tiny)) == []


def test_model_source_loads_the_drivers_network(tiny):
    source = ModelSource(TINY, device="cpu")
    loaded = source.load()
    assert loaded.digest == tiny.digest and list(loaded.layers) == list(tiny.layers)
    assert [r for _, r in run_work(source, [Logits(7)])] == [Logits(7).run(tiny)]


def test_ray_missing_says_how_to_install(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(FeatvizError, match=r'pip install "featviz\[ray\]"'):
        list(run_work(ModelSource(TINY, device="cpu"), [Logits(1)], ray=True))
