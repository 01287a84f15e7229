"""Channel circuits: exact checks on the tiny model (where a layer is a linear map of the one before,
gradient x activation must add up to the activation), the store, the work item, the `circuit`
subcommand (built from its own add_parser: not registered in cli/main.py yet) and, on real Lite0,
that mean-ablating the top inputs lowers the channel far more than ablating random ones."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from featviz_core import FeatvizError, load_model
from featviz_core.analysis.circuit_grads import ablated_activation, output_attribution
from featviz_core.analysis.circuits import CircuitWork, circuit, circuit_work
from featviz_core.analysis.photoset import PhotoSet
from featviz_core.cli import main as cli_main  # the registered subcommands, as `featviz` runs them

from .conftest import TINY, tiny  # noqa: F401 (fixture)

SMALL = PhotoSet(size=64, crops=1, limit=6)  # 12 images


@pytest.mark.usefixtures("single_thread")
def test_attributions_of_a_linear_layer_add_up_to_its_activation(tiny):
    doc = circuit(tiny, "conv2", 5, photos=SMALL)  # conv2 = one convolution of relu1
    assert doc["from"] == "relu1" and doc["into"] == "relu2" and doc["images"] == 12
    total = sum(e["attribution"] for e in doc["inputs"])
    bias = float(tiny.module.conv2.bias[5])
    assert total + bias == pytest.approx(doc["activation"], rel=1e-4, abs=1e-5)
    strengths = [abs(e["attribution"]) for e in doc["inputs"]]
    assert strengths == sorted(strengths, reverse=True) and len(strengths) == 8
    assert doc["weights"] == "conv2"
    kernel = tiny.module.conv2.weight[5].flatten(1).norm(dim=1)
    assert {e["channel"]: e["weight"] for e in doc["inputs"]} == pytest.approx(dict(enumerate(kernel.tolist())))
    assert all(e["attribution"] > 0 for e in doc["exciting"]) and all(e["sign"] == "-" for e in doc["inhibiting"])
    assert len(doc["exciting"]) + len(doc["inhibiting"]) <= 8 and doc["exciting"]
    assert circuit(tiny, "relu2", 5, photos=SMALL)["weights"] is None  # conv2 -> relu2: no convolution between


@pytest.mark.usefixtures("single_thread")
def test_feeds_into_matches_removing_the_channel_where_the_map_is_linear(tiny):
    doc = circuit(tiny, "relu1", 3, photos=SMALL, top=3)  # relu1 -> conv2: linear
    images = SMALL.images()
    base, _ = ablated_activation(tiny, "conv2", 0, "relu1", images)
    for entry in doc["feeds_into"]:
        without, _ = ablated_activation(tiny, "conv2", entry["channel"], "relu1", images, {3: 0.0})
        full, _ = ablated_activation(tiny, "conv2", entry["channel"], "relu1", images)
        assert full.mean() - without.mean() == pytest.approx(entry["attribution"], rel=1e-4, abs=1e-6)
    assert len(doc["feeds_exciting"]) <= 3 and len(doc["feeds_into"]) == 16
    forward = output_attribution(tiny, "relu1", 3, "relu3", images, method="forward")
    double = output_attribution(tiny, "relu1", 3, "relu3", images, method="double")
    assert np.allclose(forward, double, rtol=1e-4, atol=1e-6) and np.abs(forward).max() > 0
    assert base.shape == (12,)


@pytest.mark.usefixtures("single_thread")
def test_circuit_is_cached_by_its_inputs_and_bad_requests_say_what_is_valid(tiny, store, monkeypatch):
    first = circuit(tiny, "relu3", 2, photos=SMALL, store=store)
    monkeypatch.setattr(CircuitWork, "run", lambda *a: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = circuit(tiny, "relu3", 2, photos=SMALL, store=store, top=2)
    assert again["inputs"] == first["inputs"] and len(again["exciting"]) <= 2
    monkeypatch.undo()
    picture = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    more = circuit(tiny, "relu3", 2, photos=SMALL, store=store, extra=[picture])  # another key: measured again
    assert more["images"] == 13 and more["inputs"] != first["inputs"]
    work = pickle.loads(pickle.dumps(circuit_work(tiny, "relu3", 2, extra=[picture], photos=SMALL)))
    assert work.units == 13 and work.run(tiny)["inputs"] == more["inputs"]
    cases = [(("conv1", 0), "first listed layer"), (("relu2", 99), "out of range"),
             (("relu2", 0, "relu3"), "before 'relu2'"), (("relu2", 0, "relu9"), "Valid layers")]
    for request, message in cases:
        with pytest.raises(FeatvizError, match=message):
            circuit(tiny, *request, photos=SMALL)
    with pytest.raises(FeatvizError, match="uint8"):
        circuit(tiny, "relu2", 0, photos=SMALL, extra=[np.zeros((4, 4))])


@pytest.mark.usefixtures("single_thread")
def test_circuit_subcommand_writes_json_and_a_sheet(tmp_path, capsys):
    out = tmp_path / "c"
    code = cli_main(["circuit", "--model", TINY, "--layer", "relu3", "--channel", "4", "--top", "3",
                 "--size", "48", "--steps", "4", "--out", str(out), "--cache", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "circuit" in captured.err and "rendering" in captured.err  # the tqdm bars
    doc = json.loads((out / "circuit.json").read_text())
    assert (doc["layer"], doc["channel"], doc["from"], doc["into"]) == ("relu3", 4, "conv3", "logits")
    assert len(doc["inputs"]) == 16 and len(doc["exciting"]) <= 3 and doc["model"] == TINY
    assert {"channel", "attribution", "sign"} <= set(doc["inputs"][0])
    sheet = Image.open(out / "circuit_sheet.png")
    assert sheet.width > 4 * 48 and sheet.height > 48  # the channel and its 3 strongest inputs
    assert cli_main(["circuit", "--model", TINY, "--layer", "relu3", "--channel", "40", "--out", str(out),
                 "--no-cache", "--no-sheet"]) == 2
    assert "0-15" in capsys.readouterr().err
    assert cli_main(["circuit", "--model", TINY, "--layer", "relu3", "--channel", "1", "--from", "relu9",
                 "--out", str(out), "--no-cache", "--no-sheet"]) == 2


@pytest.fixture(scope="module")
def lite0():
    return load_model("lite0", device="cpu")


def ablation_drops(model, doc: dict, images, mode: str, draws: int = 5) -> tuple[float, list[float]]:
    """How much ablating the circuit's 8 most exciting inputs lowers its channel (mean over the images),
    and the same for `draws` sets of 8 inputs drawn at random (seeded by the channel). `mode` "mean":
    the ablated channels set to their means over the images; "zero": set to 0."""
    layer, channel, source = doc["layer"], doc["channel"], doc["from"]
    base, means = ablated_activation(model, layer, channel, source, images)

    def drop(chosen) -> float:
        values = {int(k): float(means[k]) if mode == "mean" else 0.0 for k in chosen}
        after, _ = ablated_activation(model, layer, channel, source, images, values)
        return float((base - after).mean())

    rng = np.random.default_rng(channel)
    count = model.layers[source].channels
    return drop([e["channel"] for e in doc["exciting"][:8]]), [drop(rng.choice(count, 8, replace=False))
                                                                for _ in range(draws)]


def drops_report(channel: int, top: float, random: list[float]) -> tuple:
    """(channel, top drop, random drops' mean, its standard error (n = draws, unbiased variance), ratio)."""
    mean, error = float(np.mean(random)), float(np.std(random, ddof=1) / np.sqrt(len(random)))
    return channel, round(top, 4), round(mean, 4), round(error, 4), round(top / mean, 1) if mean else None


ABLATED = {"blocks.5": [144, 97, 182], "blocks.3": [59, 39, 76]}  # drawn at random (seed 1), not picked


@pytest.mark.real_model
@pytest.mark.usefixtures("single_thread")  # much faster than two threads when the 2 cores are busy
@pytest.mark.parametrize("layer", sorted(ABLATED))
def test_mean_ablating_the_top_inputs_lowers_the_channel_3x_more_than_random_ones(lite0, layer):
    photos = PhotoSet(size=128, crops=1)  # 28 images
    images = photos.images()
    report = []
    for channel in ABLATED[layer]:
        doc = circuit(lite0, layer, channel, photos=photos, feeds=False)  # from the previous listed layer
        top, random = ablation_drops(lite0, doc, images, "mean")
        report.append(drops_report(channel, top, random))
        assert top > 0 and top >= 3 * np.mean(random), report
    print(layer, report)
