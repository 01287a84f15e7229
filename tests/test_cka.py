"""The debiased CKA estimator against a brute-force U-statistic, its half-sample interval, photo sets
read from a folder (hostile input), a killed run keeping its finished Grams, and on real Lite0 that the
built-in photos and a 600-crop folder give the same CKA where the biased estimator does not."""
from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest
from PIL import Image

from featviz_core import FeatvizError, load_model
from featviz_core.analysis.cka import cka_interval, cka_matrix_of, hsic_matrix, linear_cka
from featviz_core.analysis.photoset import PhotoSet
from featviz_core.analysis.selfcheck import natural_photos
from featviz_core.analysis.similarity import GramWork, layer_grams
from featviz_core.backends.work import Finished
from featviz_core.cli import main as cli_main

from .conftest import TINY, tiny  # noqa: F401 (fixture)


def _grams(n: int, d: int, seed: int, shared: np.ndarray | None = None) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    if shared is not None:
        x[:, :shared.shape[1]] += shared
    return x @ x.T


def _brute_hsic(k: np.ndarray, g: np.ndarray) -> float:
    """Song et al. (2012)'s U-statistic written out over distinct index tuples (the definition)."""
    n = len(k)
    pairs = sum(k[i, j] * g[i, j] for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    triples = sum(k[i, j] * g[i, q] for i, j, q in itertools.permutations(range(n), 3)) / (n * (n - 1) * (n - 2))
    quads = sum(k[i, j] * g[q, r] for i, j, q, r in itertools.permutations(range(n), 4)) / (
        n * (n - 1) * (n - 2) * (n - 3))
    return pairs + quads - 2 * triples


def test_the_estimator_is_the_u_statistic_of_hsic():
    shared = np.random.default_rng(9).normal(size=(8, 3))
    k, g = _grams(8, 5, 0, shared), _grams(8, 4, 1, shared)
    assert hsic_matrix([k], [g])[0, 0] == pytest.approx(_brute_hsic(k, g), rel=1e-9)
    expected = _brute_hsic(k, g) / np.sqrt(_brute_hsic(k, k) * _brute_hsic(g, g))
    assert linear_cka(k, g) == pytest.approx(expected, rel=1e-9)
    assert cka_matrix_of([k, g], [g])[:, 0] == pytest.approx([expected, 1.0], rel=1e-9)


def test_debiased_cka_of_independent_wide_features_is_near_zero_where_the_biased_one_is_not():
    k, g = _grams(40, 2000, 2), _grams(40, 2000, 3)  # wide and few: the biased HSIC's diagonal dominates
    centre = np.eye(40) - 1 / 40
    biased = np.sum(centre @ k @ centre * (centre @ g @ centre)) / np.sqrt(
        np.sum((centre @ k @ centre) ** 2) * np.sum((centre @ g @ centre) ** 2))
    assert biased > 0.5 and abs(linear_cka(k, g)) < 0.1, (biased, linear_cka(k, g))


def test_the_interval_holds_the_estimate_and_narrows_with_more_photos():
    def spread(n: int) -> tuple[float, np.ndarray, np.ndarray]:
        shared = np.random.default_rng(n).normal(size=(n, 4))
        a, b = _grams(n, 8, n + 1, shared), _grams(n, 8, n + 2, shared)
        ci = cka_interval([a, b], [a, b], list(range(n)), resamples=100)
        return float(ci[0, 1, 1] - ci[0, 1, 0]), ci, cka_matrix_of([a, b], [a, b])

    narrow, ci, cka = spread(240)
    assert np.all(ci[..., 0] <= cka + 0.02) and np.all(cka - 0.02 <= ci[..., 1])
    assert ci[0, 0] == pytest.approx([1.0, 1.0])  # a layer with itself: every half-sample says 1
    assert spread(24)[0] > 2 * narrow


def test_the_interval_resamples_whole_photos_without_duplicates(monkeypatch):
    a, b = _grams(12, 6, 4), _grams(12, 6, 5)
    groups = [i // 3 for i in range(12)]  # 4 photos of 3 images: a half-sample is 2 photos, 6 images
    seen, real = [], np.ix_

    def spy(rows, cols):
        seen.append(tuple(rows))
        return real(rows, cols)

    monkeypatch.setattr(np, "ix_", spy)
    cka_interval([a], [b], groups, resamples=20)
    monkeypatch.undo()
    assert seen and all(len(s) == 6 and len(set(s)) == 6 and len({i // 3 for i in s}) == 2 for s in seen)


def _write(folder, name: str, data: bytes) -> None:
    os.makedirs(folder, exist_ok=True)
    (folder / name).write_bytes(data)


def test_hostile_folders_get_messages_that_name_them_by_label(tmp_path):
    with pytest.raises(FeatvizError, match="'trip' does not exist") as missing:
        PhotoSet.of_folder(str(tmp_path / "nope"), label="trip")
    assert str(tmp_path) not in str(missing.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeatvizError, match="holds no JPEG, PNG or WebP files"):
        PhotoSet.of_folder(str(tmp_path / "empty"), label="empty")
    junk = tmp_path / "junk"
    _write(junk, "a.jpg", b"not a picture at all")
    _write(junk, "b.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    _write(junk, "notes.txt", b"hello")
    os.symlink("/etc/hostname", junk / "c.jpg")
    with pytest.raises(FeatvizError, match="holds no readable photo") as garbage:
        PhotoSet.of_folder(str(junk), label="junk")
    assert str(tmp_path) not in str(garbage.value)


def test_a_folder_photoset_skips_garbage_caps_its_count_and_names_its_files_in_the_key(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    for i, photo in enumerate(natural_photos()[:3]):
        Image.fromarray(photo).save(folder / f"p{i}.png")
    _write(folder, "zz.jpg", b"garbage")
    photos = PhotoSet.of_folder(str(folder), size=32, crops=1)
    assert photos.photos() == 3 and photos.count() == 6 and photos.folder.skipped == 1
    assert [t.shape[0] for t in photos.batches(3, 4)] == [4, 2]
    assert PhotoSet.of_folder(str(folder), size=32, limit=2).photos() == 2
    before = photos.identity()
    Image.fromarray(natural_photos()[5]).save(folder / "p1.png")  # another picture under the same name
    assert PhotoSet.of_folder(str(folder), size=32, crops=1).identity() != before
    (folder / "p1.png").write_bytes((folder / "p1.png").read_bytes()[:200])  # truncated after its header
    with pytest.raises(FeatvizError, match="Photo 'p1.png' in folder") as damaged:
        list(PhotoSet.of_folder(str(folder), size=32, label="mine").batches())
    assert str(tmp_path) not in str(damaged.value)


@pytest.mark.usefixtures("single_thread")
def test_a_killed_run_keeps_each_finished_layers_gram(tiny, store, monkeypatch):
    photos = PhotoSet(size=48, crops=1, limit=4)
    layers, sweep_bytes = ["conv1", "relu2", "relu3"], 1  # a sweep per layer's channel slice
    real, ran = GramWork.stream, []

    def dies_after_the_first_layer(self, model):
        ran.append(self.layers)
        for event in real(self, model):
            yield event
            if isinstance(event, Finished):
                raise KeyboardInterrupt  # the run is killed while the next layer's Gram is summed

    monkeypatch.setattr(GramWork, "stream", dies_after_the_first_layer)
    with pytest.raises(KeyboardInterrupt):
        layer_grams(tiny, layers, photos, store=store, max_bytes=sweep_bytes)
    assert ran == [tuple(layers)]  # one item: the layers share the forward sweeps
    ran.clear()

    def counted(self, model):
        ran.append(self.layers)
        yield from real(self, model)

    monkeypatch.setattr(GramWork, "stream", counted)
    kept = layer_grams(tiny, layers, photos, store=store, max_bytes=sweep_bytes)
    assert ran == [("relu2", "relu3")]  # conv1's Gram came from the store, the rest ran as one item
    whole = layer_grams(tiny, layers, photos)  # no store: every layer in one item
    assert all(np.allclose(kept[name], whole[name], rtol=1e-4, atol=1e-6) for name in layers)


@pytest.mark.usefixtures("single_thread")
def test_similarity_and_circuit_subcommands_take_an_image_folder(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, photo in enumerate(natural_photos()[:8]):
        Image.fromarray(photo).save(folder / f"{i}.jpg")
    out = tmp_path / "s"
    assert cli_main(["similarity", "--model", TINY, "--layers", "conv1,relu3", "--photo-size", "48", "--images",
                     str(folder), "--out", str(out), "--no-cache"]) == 0, capsys.readouterr().err
    doc = json.loads((out / "similarity.json").read_text())
    assert doc["n"] == 8 and doc["photos"] == 8 and np.asarray(doc["cka_ci"]).shape == (2, 2, 2)
    assert cli_main(["circuit", "--model", TINY, "--layer", "relu2", "--channel", "1", "--photo-size", "48",
                     "--images", str(folder), "--no-sheet", "--out", str(tmp_path / "c"), "--no-cache"]) == 0
    assert json.loads((tmp_path / "c" / "circuit.json").read_text())["images"] == 8
    (folder / "7.jpg").unlink()
    capsys.readouterr()
    assert cli_main(["similarity", "--model", TINY, "--images", str(folder), "--out", str(out), "--no-cache"]) == 2
    assert "at least 8 photos" in capsys.readouterr().err
    assert cli_main(["similarity", "--model", TINY, "--images", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def _biased(a: np.ndarray, b: np.ndarray) -> float:
    def centred(k):
        return k - k.mean(0, keepdims=True) - k.mean(1, keepdims=True) + k.mean()

    x, y = centred(a), centred(b)
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def _crop_folder(folder, count: int, size: int) -> None:
    """`count` random crops (40-100% of the short side) of the natural photos, written as PNG files."""
    folder.mkdir()
    rng, photos = np.random.default_rng(1), natural_photos()
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        Image.fromarray(photo[y:y + side, x:x + side]).resize((size, size), Image.Resampling.LANCZOS).save(
            folder / f"crop{i:04d}.png")


@pytest.mark.real_model
def test_lite0_cka_from_the_built_in_photos_and_a_600_crop_folder_agree(tmp_path):
    lite0, layers, size = load_model("lite0", device="cpu"), ["blocks.1", "blocks.5"], 96
    _crop_folder(tmp_path / "crops", 600, size)
    built_in = layer_grams(lite0, layers, PhotoSet(size=size))  # 14 photos x 7 views: n = 98
    folder = layer_grams(lite0, layers, PhotoSet.of_folder(str(tmp_path / "crops"), size=size))  # n = 600
    debiased = [linear_cka(g["blocks.1"], g["blocks.5"]) for g in (built_in, folder)]
    biased = [_biased(g["blocks.1"], g["blocks.5"]) for g in (built_in, folder)]
    assert abs(debiased[0] - debiased[1]) < 0.05, (debiased, biased)
    assert abs(biased[0] - biased[1]) > max(0.05, 2 * abs(debiased[0] - debiased[1])), (debiased, biased)


def test_a_folder_of_too_many_images_is_named_by_its_label_not_its_path(tmp_path, monkeypatch):
    from featviz_core.inputs import imagefolder

    folder = tmp_path / "owner_photos"
    folder.mkdir()
    for i, photo in enumerate(natural_photos()[:4]):
        Image.fromarray(photo).save(folder / f"{i}.png")
    monkeypatch.setattr(imagefolder, "MAX_FILES", 2)
    with pytest.raises(FeatvizError, match="'photos 1' holds more than 2 images") as many:
        imagefolder.listed_images(str(folder), "photos 1")
    assert str(tmp_path) not in str(many.value)
