"""Concepts (dictionary learning over a layer's activations): each method recovers a planted dictionary,
`auto` picks by sign, R^2 rises with k, the learning is a cached job, the direction objective and its
cache key, concept pictures through the driver, exemplars against a brute-force search, the heatmap,
matching (itself, a permutation, another seed), and the `concepts` subcommand on the tiny model,
hostile folders included."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from featviz_core import FeatvizError
from featviz_core.analysis import concepts_learn
from featviz_core.analysis.concepts import ConceptWork, code_maps, concept_heatmap, learn_concepts, r2_curve
from featviz_core.analysis.concepts_match import match_concepts
from featviz_core.analysis.concepts_photos import folder_photos, photo_at, photo_batches
from featviz_core.analysis.concepts_render import render_concepts
from featviz_core.analysis.concepts_where import concept_exemplars
from featviz_core.analysis.photoset import PhotoSet
from featviz_core.backends import ModelSource, run_work
from featviz_core.cli.main import main as featviz
from featviz_core.jobs.runner import collect
from featviz_core.optvis import objectives
from featviz_core.spec import RenderSettings, Target
from featviz_core.spec.direction import direction_key
from featviz_core.spec.layers import spec_for

from .conftest import TINY, count_forwards, single_thread, tiny  # noqa: F401 (fixtures)
from .exemplar_fixtures import READABLE, build_folder

SMALL = PhotoSet(size=64, crops=1, limit=6)  # 12 images of 64 px: 32 x 32 positions each at relu2 and relu3
POSITIONS = 3000


def learn(model, layer: str, k: int = 12, **options) -> dict:
    """learn_concepts on SMALL at 3,000 positions (a busy CPU learns that in seconds)."""
    return learn_concepts(model, layer, k, **{"photos": SMALL, "max_positions": POSITIONS, **options})


def planted(k: int, channels: int, n: int, signed: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(atoms (k, C) unit, activations (n, C)): two atoms active per sample with codes in [0.5, 2.5), noise 0.05,
    and, when `signed`, an offset every sample shares (an SAE must find the atoms around the mean)."""
    gen = torch.Generator().manual_seed(seed)
    atoms = torch.randn(k, channels, generator=gen)
    atoms = torch.nn.functional.normalize(atoms if signed else atoms.abs(), dim=1)
    codes = torch.zeros(n, k)
    for _ in range(2):
        codes[torch.arange(n), torch.randint(0, k, (n,), generator=gen)] += torch.rand(n, generator=gen) * 2 + 0.5
    x = codes @ atoms + 0.05 * torch.randn(n, channels, generator=gen)
    return atoms, x + torch.randn(channels, generator=gen) if signed else x.clamp(min=0)


def matched_cosine(codec: dict, x: torch.Tensor, atoms: torch.Tensor) -> float:
    _, concepts = concepts_learn.describe(codec, x)
    cos = (torch.tensor([c["direction"] for c in concepts]) @ atoms.T).numpy()
    rows, cols = linear_sum_assignment(-cos)
    return float(cos[rows, cols].mean())


@pytest.mark.parametrize("method,signed", [("nmf", False), ("sae", True)])
def test_each_method_recovers_a_planted_dictionary(method, signed, single_thread):  # noqa: F811
    atoms, x = planted(8, 32, 3000, signed)  # two atoms per sample: the SAE's topk at k = 8
    codec = concepts_learn.fit(method, x, 8, seed=0)
    # Measured 0.99 (nmf) and 0.97 (sae); a random dictionary scores about 0.3.
    assert matched_cosine(codec, x, atoms) >= 0.9
    assert concepts_learn.r2_score(codec, x) > 0.9


def test_auto_picks_by_sign_and_a_clamp_is_factored_clipped():
    signed = torch.randn(500, 8)
    assert concepts_learn.pick_method("auto", signed, clamp=False) == "sae"
    assert concepts_learn.pick_method("auto", signed.abs(), clamp=False) == "nmf"
    assert concepts_learn.pick_method("auto", signed, clamp=True) == "nmf"  # read before its ReLU6
    codec = concepts_learn.fit("nmf", signed, 3, seed=0)
    assert torch.equal(concepts_learn.factored(codec, signed), signed.clamp(min=0))
    with pytest.raises(FeatvizError, match="Valid concept methods: auto, nmf, sae"):
        concepts_learn.pick_method("pca", signed, clamp=False)


def test_concepts_are_unit_directions_sorted_by_importance(tiny, single_thread):  # noqa: F811
    doc = learn(tiny, "relu3", k=4)
    assert doc["method"] == "nmf" and doc["clip"] is False  # a ReLU output: non-negative
    shares = [c["importance"] for c in doc["concepts"]]
    assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1.0, abs=1e-6)
    for concept in doc["concepts"]:
        assert np.linalg.norm(concept["direction"]) == pytest.approx(1.0, abs=1e-5)
        top = concept["channels"][0]
        assert abs(top["weight"]) == pytest.approx(max(abs(v) for v in concept["direction"]), abs=1e-9)
    assert doc["positions"] == POSITIONS and doc["photos"]["count"] == 12


def test_r2_rises_with_k(tiny, single_thread):  # noqa: F811
    curve = r2_curve(tiny, "relu2", ks=(1, 2, 4, 8), photos=SMALL, max_positions=3000)
    values = [curve[k] for k in (1, 2, 4, 8)]
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert 0 < values[0] and values[-1] < 1


def test_learning_is_a_cached_job_keyed_by_its_request(tiny, store, single_thread):  # noqa: F811
    first = learn(tiny, "conv3", k=3, method="sae", store=store)
    with count_forwards(tiny.module) as calls:
        again = learn(tiny, "conv3", k=3, method="sae", store=store)
    assert calls == [] and again == first
    with count_forwards(tiny.module) as calls:
        other = learn(tiny, "conv3", k=3, method="sae", seed=1, store=store)
    assert calls and other["seed"] == 1
    work = pickle.loads(pickle.dumps(ConceptWork("conv3", 3, "sae", 0, SMALL, POSITIONS)))  # plain data, as Ray has it
    (_, doc), = run_work(ModelSource(TINY, device="cpu"), [work], model=tiny)
    assert np.allclose([c["direction"] for c in doc["concepts"]], [c["direction"] for c in first["concepts"]],
                       atol=1e-4)


def test_bad_requests_name_the_valid_choices(tiny):  # noqa: F811
    with pytest.raises(FeatvizError, match="Valid layers"):
        learn(tiny, "relu9")
    with pytest.raises(FeatvizError, match="spatial map.*conv1"):
        learn(tiny, "logits")
    with pytest.raises(FeatvizError, match="from 1 to 256"):
        learn(tiny, "relu3", k=0)


def test_direction_objective_is_the_mean_dot_product_and_the_cosine_variant_weighs_it():
    acts = torch.randn(2, 5, 3, 3)
    dirs = torch.nn.functional.normalize(torch.randn(2, 5), dim=1)
    targets = [Target("x", 0), Target("x", 1)]
    score = objectives.direction(targets, dirs)({"x": acts})
    assert torch.allclose(score, torch.einsum("bchw,bc->b", acts, dirs) / 9, atol=1e-6)
    dot = torch.einsum("bchw,bc->bhw", acts, dirs)
    cos = (dot / acts.norm(dim=1)).clamp(min=0.1)
    assert torch.allclose(objectives.direction(targets, dirs, power=2)({"x": acts}), (dot * cos ** 2).mean((1, 2)),
                          atol=1e-6)


def test_the_direction_enters_the_cache_key(tiny):  # noqa: F811
    spec = spec_for(tiny, Target("relu3", 0), RenderSettings(size=32, steps=4))
    d = np.linspace(-1, 1, 16) / np.linalg.norm(np.linspace(-1, 1, 16))
    assert direction_key(spec, d) == direction_key(spec, d + 1e-6)  # the same direction learned again
    assert direction_key(spec, d) != direction_key(spec, np.roll(d, 1))
    assert direction_key(spec, d) != direction_key(spec, d, power=1.0)
    assert direction_key(spec, d) != spec.key()


def test_concept_pictures_are_rendered_once_and_climb_their_direction(tiny, store, single_thread):  # noqa: F811
    doc = learn(tiny, "relu3", k=3)
    settings = RenderSettings(size=32, steps=8)
    results = collect(render_concepts(tiny, doc, settings, store))
    assert sorted(r.channel for r in results) == [0, 1, 2]
    assert all(r.curve[-1] > r.curve[0] for r in results)  # the objective rose
    again = collect(render_concepts(tiny, doc, settings, store))
    assert all(r.cached for r in again) and {r.key for r in again} == {r.key for r in results}
    other = {**doc, "concepts": [{**c, "direction": list(np.roll(c["direction"], 1))} for c in doc["concepts"]]}
    assert not any(r.cached for r in collect(render_concepts(tiny, other, settings, store, concepts=[0])))


def test_exemplar_top_one_agrees_with_a_brute_force_search(tiny, single_thread):  # noqa: F811
    doc = learn(tiny, "relu3", k=3)
    found = concept_exemplars(tiny, doc, SMALL, top=3)
    maps = code_maps(tiny, doc, SMALL.images())  # every photo, every position at once
    for c, exemplars in enumerate(found):
        flat = maps[:, c].flatten(1)
        photo, position = divmod(int(flat.flatten().argmax()), flat.shape[1])
        best = exemplars[0]
        assert (best.photo, best.row * maps.shape[-1] + best.col) == (photo, position)
        assert best.code == pytest.approx(float(flat.max()), rel=1e-5)
        assert [e.code for e in exemplars] == sorted((e.code for e in exemplars), reverse=True)
        assert len({e.photo for e in exemplars}) == 3 and best.crop.ndim == 3 and best.crop.size > 0


def test_heatmap_is_the_code_map_upsampled_to_the_photo(tiny, single_thread):  # noqa: F811
    doc = learn(tiny, "relu3", k=3)
    photo = photo_at(SMALL, tiny, 2)
    heat = concept_heatmap(tiny, doc, 0, photo)
    assert heat.shape == photo.shape[:2] and heat.max() == pytest.approx(1.0) and heat.min() >= 0
    codes = code_maps(tiny, doc, SMALL.images()[2:3])[0, 0]
    row, col = divmod(int(codes.argmax()), codes.shape[1])
    peak_row, peak_col = np.unravel_index(heat.argmax(), heat.shape)
    cell = photo.shape[0] / codes.shape[0]
    assert abs(peak_row / cell - (row + 0.5)) <= 1 and abs(peak_col / cell - (col + 0.5)) <= 1
    with pytest.raises(FeatvizError, match="from 0 to 2"):
        concept_heatmap(tiny, doc, 3, photo)


def test_matching_pairs_a_layer_with_itself_a_permutation_and_another_seed(tiny, single_thread):  # noqa: F811
    doc = learn(tiny, "conv3", k=4, method="sae")
    same = match_concepts(tiny, doc, tiny, doc, SMALL)
    assert [(p["concept"], p["concept2"]) for p in sorted(same["pairs"], key=lambda p: p["concept"])] == \
        [(i, i) for i in range(4)]
    assert all(p["score"] == pytest.approx(1.0, abs=1e-6) for p in same["pairs"])
    order = [2, 0, 3, 1]
    permuted = {**doc, "concepts": [doc["concepts"][i] for i in order],
                "codec": {**doc["codec"], **{key: [doc["codec"][key][i] for i in order]
                                             for key in ("atoms", "encoder", "bias")}}}
    pairs = match_concepts(tiny, doc, tiny, permuted, SMALL)["pairs"]
    assert {(p["concept"], p["concept2"]) for p in pairs} == {(i, order.index(i)) for i in range(4)}
    reseeded = learn(tiny, "conv3", k=4, method="sae", seed=1)
    scores = [p["score"] for p in match_concepts(tiny, doc, tiny, reseeded, SMALL)["pairs"]]
    assert len(scores) == 4 and np.mean(scores) >= 0.9


def test_two_layers_match_one_to_one_with_the_rest_unmatched(tiny, single_thread):  # noqa: F811
    deep = learn(tiny, "relu3", k=3)
    shallow = learn(tiny, "relu2", k=5)
    match = match_concepts(tiny, deep, tiny, shallow, SMALL)
    paired = [p["concept"] for p in match["pairs"]]
    assert sorted(paired + match["unmatched"]) == [0, 1, 2]
    assert sorted([p["concept2"] for p in match["pairs"]] + match["unmatched2"]) == [0, 1, 2, 3, 4]
    assert all(p["score"] >= match["threshold"] for p in match["pairs"])
    corr = np.asarray(match["correlations"])
    assert corr.shape == (3, 5) and np.all(np.abs(corr) <= 1 + 1e-9)


def test_a_hostile_folder_gives_the_readable_photos_only(tiny, tmp_path, single_thread):  # noqa: F811
    photos = folder_photos(str(build_folder(tmp_path)))
    read = [i for index, _ in photo_batches(photos, tiny) for i in index]
    assert len(read) == READABLE and all(".." not in f and not f.startswith("/") for f in photos.files)
    doc = learn(tiny, "relu3", k=2, photos=photos)
    assert doc["photos"]["count"] == READABLE and doc["photos"]["identity"].startswith("folder-")
    assert {e.photo for row in concept_exemplars(tiny, doc, photos, top=2) for e in row} <= set(read)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos")
    with pytest.raises(FeatvizError, match="holds no JPEG, PNG or WebP files"):
        folder_photos(str(empty))


def _cli(args, capsys) -> tuple[int, str]:
    try:
        code = featviz(args)
    except SystemExit as exc:  # argparse's own errors (an unknown choice) exit there, with code 2
        code = exc.code
    return code, capsys.readouterr().err


def test_cli_end_to_end_on_a_folder(tiny, tmp_path, capsys, single_thread):  # noqa: F811
    folder, out = build_folder(tmp_path), tmp_path / "out"
    code, err = _cli(["concepts", "--model", TINY, "--layer", "relu3", "--images", str(folder), "--k", "3",
                      "--size", "32", "--steps", "6", "--top", "2", "--layer2", "relu2", "--out", str(out),
                      "--cache", str(tmp_path / "cache")], capsys)
    assert code == 0, err
    doc = json.loads((out / "concepts.json").read_text())
    assert (doc["model"], doc["layer"], doc["method"], doc["k"]) == (TINY, "relu3", "nmf", 3)
    assert doc["photos"]["count"] == READABLE and 0 < doc["r2"] <= 1
    for c, concept in enumerate(doc["concepts"]):
        assert concept["concept"] == c and concept["png"] == f"concept_{c}.png"
        assert np.linalg.norm(concept["direction"]) == pytest.approx(1.0, abs=1e-5) and len(concept["direction"]) == 16
        assert concept["exemplars"] == [f"concept_{c}_ex0.png", f"concept_{c}_ex1.png"]
        assert all((out / name).is_file() for name in [concept["png"], *concept["exemplars"]])
        assert isinstance(concept["z"], float) and 1 <= concept["rank"] <= 3
    assert (out / "concepts.png").stat().st_size > 0
    matches = json.loads((out / "matches.json").read_text())
    assert len(matches["pairs"]) + len(matches["unmatched"]) == 3 and "rendering" in err


@pytest.mark.parametrize("args,message", [
    (["--layer", "relu9"], "Unknown layer 'relu9'"),
    (["--layer", "relu3", "--method", "pca"], "invalid choice: 'pca'"),
    (["--layer", "relu3", "--k", "0"], "from 1 to 256"),
    (["--layer", "relu3", "--images", "/no/such/folder"], "does not exist or is not a folder"),
    (["--layer", "relu3", "--model2", TINY], "--model2 needs --layer2"),
    (["--layer", "relu1", "--method", "nmf", "--k", "40", "--no-cache"], "NMF finds at most 8 concepts"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    code, err = _cli(["concepts", "--model", TINY, "--no-cache", "--out", str(tmp_path / "o"), *args], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_models_that_see_other_photos_are_not_matched(tiny, single_thread):  # noqa: F811
    from featviz_core import load_model

    gray = load_model("tests.tiny_model:make_gray", device="cpu")
    doc, doc_gray = learn(tiny, "relu3", k=2), learn(gray, "relu3", k=2)
    with pytest.raises(FeatvizError, match="3-channel photos and .* 1-channel ones"):
        match_concepts(tiny, doc, gray, doc_gray, SMALL)
    with pytest.raises(FeatvizError, match="learned on other weights"):
        match_concepts(tiny, doc_gray, tiny, doc, SMALL)
