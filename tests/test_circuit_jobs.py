"""Circuits and CKA matrices as batch jobs: the driver (jobs/driver.py) runs their work items and stores
the results under their keys, so a rerun reads the store and makes no forward pass; and both
subcommands are registered in the one command line (cli/main.py)."""
from __future__ import annotations

import json

import pytest

from featviz_core.analysis import GramWork, PhotoSet, circuit, circuit_key, circuit_work, cka_matrix, similarity_key
from featviz_core.cli.main import main
from featviz_core.jobs import driver
from featviz_core.store import json_key

from .conftest import TINY, tiny  # noqa: F401 (fixture)

SMALL = PhotoSet(size=48, crops=1, limit=4)  # 8 images


def _forbid_forward(monkeypatch, tiny):
    def boom(*args, **kwargs):
        raise AssertionError("a forward pass on a stored result")

    monkeypatch.setattr(tiny.module, "forward", boom)
    monkeypatch.setattr(driver, "run_events", boom)


@pytest.mark.usefixtures("single_thread")
def test_the_driver_stores_a_circuit_and_a_rerun_reads_it(tiny, store, monkeypatch):
    kept = []
    real_keep = driver.keep
    monkeypatch.setattr(driver, "keep", lambda s, value, key=None: (kept.append(key), real_keep(s, value, key)))
    first = circuit(tiny, "relu2", 4, photos=SMALL, store=store)
    key = json_key(circuit_key(tiny, circuit_work(tiny, "relu2", 4, photos=SMALL)))
    assert kept == [key] and store.get_json(key)["inputs"] == first["inputs"]  # the driver wrote it
    _forbid_forward(monkeypatch, tiny)
    again = circuit(tiny, "relu2", 4, photos=SMALL, store=store, top=3)
    assert again["inputs"] == first["inputs"] and len(again["exciting"]) <= 3


@pytest.mark.usefixtures("single_thread")
def test_a_stored_circuit_of_other_layers_is_measured_again(tiny, store):
    """A stored circuit whose lists do not cover every channel of its layers (a damaged entry, or one
    measured on other weights under a reused digest) is measured again through the driver and replaced."""
    first = circuit(tiny, "relu2", 4, photos=SMALL, store=store)
    key = json_key(circuit_key(tiny, circuit_work(tiny, "relu2", 4, photos=SMALL)))
    store.put_json(key, {**store.get_json(key), "inputs": first["inputs"][:2]})
    again = circuit(tiny, "relu2", 4, photos=SMALL, store=store)
    assert len(again["inputs"]) == tiny.layers[first["from"]].channels == len(first["inputs"])
    assert store.get_json(key)["inputs"] == again["inputs"]


def test_a_model_card_gives_the_keys_the_loaded_model_gives():
    """The dashboard finds stored circuits and CKA matrices by the model's card (spec.ModelCard, no
    torch), a greyscale model's too, instead of a stand-in of the model that assumed RGB."""
    from pathlib import Path

    from featviz_core import load_model
    from featviz_core.spec import ModelCard

    gray = load_model("tests.tiny_model:make_gray", device="cpu")
    card = ModelCard.from_json(gray.name, json.loads(json.dumps(ModelCard.of(gray).to_json())))
    assert card.in_channels == gray.in_channels == 1 and card.layers == gray.layers
    work = circuit_work(gray, "relu2", 1, photos=SMALL)
    assert circuit_key(card, work) == circuit_key(gray, work)
    assert similarity_key(card, ["relu1"], card, ["relu3"], SMALL) == similarity_key(gray, ["relu1"], gray,
                                                                                      ["relu3"], SMALL)
    ui = Path(__file__).resolve().parent.parent / "featviz_ui"
    assert not [p.name for p in ui.rglob("*.py") if "SimpleNamespace" in p.read_text()]


@pytest.mark.usefixtures("single_thread")
def test_the_driver_runs_the_grams_with_progress_and_a_rerun_reads_the_store(tiny, store, monkeypatch):
    layers = ["conv1", "relu2", "relu3"]
    seen = {"done": 0, "total": 0}

    def done(n: int, more: int) -> None:
        seen["done"] += n
        seen["total"] += more

    streamed = []
    real_stream = GramWork.stream

    def stream(self, model):
        streamed.append(self.layers)
        yield from real_stream(self, model)

    monkeypatch.setattr(GramWork, "stream", stream)
    first = cka_matrix(tiny, layers, SMALL, store=store, done=done)
    assert streamed == [tuple(layers)]  # one work item, keyed per layer, through the in-process stream
    assert seen["total"] >= 8 and seen["done"] == seen["total"]
    assert store.get_json(json_key(similarity_key(tiny, layers, tiny, layers, SMALL)))["cka"] == first
    _forbid_forward(monkeypatch, tiny)
    assert cka_matrix(tiny, layers, SMALL, store=store) == first
    assert cka_matrix(tiny, ["relu3", "conv1"], SMALL, store=store)[1][0] == pytest.approx(first[0][2])  # Grams


@pytest.mark.usefixtures("single_thread")
def test_both_subcommands_are_registered(tmp_path, capsys):
    out, cache = tmp_path / "c", str(tmp_path / "cache")
    args = ["--model", TINY, "--device", "cpu", "--photo-size", "48", "--cache", cache]
    assert main(["circuit", *args, "--layer", "relu2", "--channel", "1", "--no-sheet", "--out", str(out)]) == 0
    doc = json.loads((out / "circuit.json").read_text())
    assert doc["from"] == "conv2" and doc["exciting"] and "feeds_into" in doc
    assert main(["similarity", *args, "--layers", "conv1,relu3", "--out", str(tmp_path / "s")]) == 0
    assert len(json.loads((tmp_path / "s" / "similarity.json").read_text())["cka"]) == 2
    assert main(["circuit", *args, "--layer", "relu2", "--channel", "999", "--no-sheet", "--out", str(out)]) == 2
    assert "999" in capsys.readouterr().err
