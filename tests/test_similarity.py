"""Layer similarity (linear CKA): its invariances on made-up features, the Grams' bounded-memory sums,
the store, the work item, the `similarity` subcommand (built from its own add_parser: it is not
registered in cli/main.py yet) and, on real Lite0, that neighbouring stages are more alike than distant."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from featviz_core import FeatvizError, load_model
from featviz_core.analysis import grams
from featviz_core.analysis.cka import linear_cka
from featviz_core.analysis.grams import gram, model_grams
from featviz_core.analysis.photoset import PhotoSet
from featviz_core.analysis.similarity import GramWork, cka_matrix
from featviz_core.backends import ModelSource, run_work
from featviz_core.cli import main as cli_main  # the registered subcommands, as `featviz` runs them
from featviz_core.cli import similarity as similarity_cli
from featviz_core.spec import stage_layers

from .conftest import TINY, tiny  # noqa: F401 (fixture)

SMALL = PhotoSet(size=64, crops=1, limit=6)  # 12 images: enough for the tiny model's checks


def _features(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _cka(x: torch.Tensor, y: torch.Tensor) -> float:
    return linear_cka(gram(x), gram(y))


def test_cka_of_features_with_themselves_is_one_and_symmetric():
    x, y = _features(40, 30, 0), _features(40, 30, 1) + 0.5 * _features(40, 30, 0)
    assert _cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert _cka(x, y) == pytest.approx(_cka(y, x), abs=1e-12)
    assert 0 < _cka(x, y) < 1


def test_cka_ignores_rotation_and_isotropic_scaling_but_not_other_maps():
    x, y = _features(50, 20, 2), _features(50, 12, 3) + _features(50, 20, 2)[:, :12]
    q, _ = torch.linalg.qr(_features(20, 20, 4))
    assert _cka(x @ q * 7.5, y) == pytest.approx(_cka(x, y), abs=1e-10)
    assert _cka(x @ q * 0.01, x) == pytest.approx(1.0, abs=1e-10)
    stretched = x * torch.linspace(0.1, 10, 20, dtype=torch.float64)  # anisotropic: CKA must notice
    assert _cka(stretched, x) < 0.9


def test_cka_of_independent_features_is_low():
    values = [_cka(_features(200, 10, s), _features(200, 10, 100 + s)) for s in range(5)]
    assert max(values) < 0.5, values
    assert linear_cka(np.ones((5, 5)), gram(_features(5, 3, 0))) == 0.0  # constant features share nothing


def test_gram_sums_column_chunks(monkeypatch):
    x = _features(7, 100, 5).float()
    monkeypatch.setattr(grams, "COLUMN_CHUNK", 16)
    assert np.allclose(gram(x), (x.double() @ x.double().T).numpy())


@pytest.mark.usefixtures("single_thread")
def test_grams_read_in_small_sweeps_equal_one_sweep(tiny):
    images = SMALL.images()
    whole = model_grams(tiny, ["conv1", "relu2", "relu3"], images, batch=5)
    sliced = model_grams(tiny, ["conv1", "relu2", "relu3"], images, batch=5, max_bytes=12 * 64 * 64 * 4)
    for layer in whole:
        assert np.allclose(whole[layer], sliced[layer], rtol=1e-6), layer
    assert len(grams.sweeps(tiny, ["conv1", "relu2"], 12, 64, 12 * 64 * 64 * 4)) > 2  # conv1 in slices


@pytest.mark.usefixtures("single_thread")
def test_cka_matrix_is_cached_and_the_work_item_runs_on_a_backend(tiny, store, monkeypatch):
    layers = ["conv1", "relu1", "relu2", "relu3"]
    first = cka_matrix(tiny, layers, SMALL, store=store)
    assert len(first) == 4 and all(len(r) == 4 for r in first)
    assert all(first[i][i] == pytest.approx(1.0) for i in range(4))
    assert np.allclose(first, np.asarray(first).T)
    assert first[0][1] > first[0][3]  # conv1 is nearer relu1 than relu3

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(GramWork, "run", boom)
    assert cka_matrix(tiny, layers, SMALL, store=store) == first  # the matrix from the store
    assert cka_matrix(tiny, ["relu3", "conv1"], SMALL, store=store)[0][1] == pytest.approx(first[3][0])  # Grams too
    monkeypatch.undo()
    work = pickle.loads(pickle.dumps(GramWork(("relu1", "relu3"), SMALL)))
    [(index, doc)] = list(run_work(ModelSource(TINY, device="cpu"), [work], model=tiny))
    assert index == 0 and list(doc) == ["relu1", "relu3"] and all(part["n"] == 12 for part in doc.values())
    relu1, relu3 = (np.asarray(doc[name]["grams"][0]) for name in ("relu1", "relu3"))
    assert linear_cka(relu1, relu3) == pytest.approx(first[1][3])


@pytest.mark.usefixtures("single_thread")
def test_two_models_compare_over_the_same_photos(tiny):
    other = load_model("tests.tiny_model:make_other_seed", device="cpu")
    cross = cka_matrix(tiny, ["conv1", "relu3"], SMALL, model2=other, layers2=["conv1", "relu2", "relu3"])
    assert len(cross) == 2 and len(cross[0]) == 3
    assert all(0 <= v <= 1 for row in cross for v in row)
    with pytest.raises(FeatvizError, match="Valid layers"):
        cka_matrix(tiny, ["conv9"], SMALL)


@pytest.mark.usefixtures("single_thread")
def test_similarity_subcommand_writes_json_and_heatmap(tmp_path, capsys):
    out = tmp_path / "s"
    code = cli_main(["similarity", "--model", TINY, "--layers", "conv1,relu2,relu3", "--model2",
                 "tests.tiny_model:make_other_seed", "--layers2", "relu1,relu3", "--photo-size", "48",
                 "--out", str(out), "--cache", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "similarity" in captured.err  # the tqdm bar
    doc = json.loads((out / "similarity.json").read_text())
    assert doc["layers"] == ["conv1", "relu2", "relu3"] and doc["layers2"] == ["relu1", "relu3"]
    assert np.asarray(doc["cka"]).shape == (3, 2)
    png = Image.open(out / "similarity.png")
    assert png.mode == "RGB" and png.width > 2 * similarity_cli.CELL and png.height > 3 * similarity_cli.CELL
    assert cli_main(["similarity", "--model", TINY, "--layers", "relu9", "--out", str(out), "--no-cache"]) == 2
    assert "relu9" in capsys.readouterr().err


@pytest.fixture(scope="module")
def lite0():
    return load_model("lite0", device="cpu")


@pytest.mark.real_model
def test_lite0_neighbouring_stages_are_more_alike_than_distant_ones(lite0):
    cka = cka_matrix(lite0, ["blocks.1", "blocks.4", "blocks.5"])  # the default photos: 14 photos x 7 views
    assert cka[1][2] > cka[0][2] + 0.1, cka
    assert cka[1][2] > 0.7 and cka[0][0] == pytest.approx(1.0)
    assert stage_layers(lite0.layers) == ["bn1"] + [f"blocks.{i}" for i in range(7)] + ["bn2"]
