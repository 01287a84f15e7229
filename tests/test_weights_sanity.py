"""Weights that load but cannot give a picture (NaN or infinite values, a layer of zeros on the path)
are refused before anything is rendered: one line naming the tensor, exit 2 on the command line, an
error note (no traceback) in the dashboard."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from featviz_core import FeatvizError, load_model
from featviz_core.models import UnusableWeightsError
from featviz_ui.models import current_uploads
from tests.app_fixtures import TWO_BY_TWO, TWO_BY_TWO_LABELS, captions, open_app, texts, warm_cache, warm_cache_dir  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def _resnet18_file(path, **changes) -> Path:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        state = torchvision.models.resnet18(weights=None).state_dict()
    for key, fill in changes.items():
        state[key.replace("__", ".")] = torch.full_like(state[key.replace("__", ".")], fill)
    torch.save(state, path)
    return path


def test_nan_first_convolution_is_refused_on_the_command_line(tmp_path):
    weights = _resnet18_file(tmp_path / "nan.pt", conv1__weight=float("nan"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "featviz_core", "render", "--model", "resnet18", "--weights",
                          str(weights), "--layer", "layer1", "--channels", "0", "--size", "32", "--steps", "4",
                          "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "conv1.weight" in run.stderr and "NaN" in run.stderr and str(tmp_path) not in run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


@pytest.mark.parametrize("change, words", [
    ({"bn1__running_var": float("inf")}, ["bn1.running_var", "infinite"]),
    ({"layer2__0__conv1__weight": 0.0}, ["layer2.0.conv1.weight", "all zeros"]),
])
def test_infinite_values_and_a_layer_of_zeros_are_refused(tmp_path, change, words):
    with pytest.raises(UnusableWeightsError) as err:
        load_model("resnet18", device="cpu", weights=str(_resnet18_file(tmp_path / "w.pt", **change)))
    assert isinstance(err.value, FeatvizError) and all(w in str(err.value) for w in words), str(err.value)


def test_zeros_off_the_path_and_zero_vectors_are_fine():
    """A zero batch-norm scale (a zero-initialized residual branch) and a zero bias are healthy."""
    from tests.tiny_model import build

    net = build()
    with torch.no_grad():
        net.conv2.bias.zero_()
    net.unused = torch.nn.Linear(4, 4)
    with torch.no_grad():
        net.unused.weight.zero_()
    model = load_model(net, device="cpu", input_size=64)
    assert "relu3" in model.layers


def test_nan_weights_uploaded_to_the_dashboard_are_an_error_note(warm_cache, tmp_path):
    import timm

    state = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    state["conv_stem.weight"] = torch.full_like(state["conv_stem.weight"], float("nan"))
    torch.save(state, tmp_path / "nan.pt")
    upload_id = current_uploads().put((tmp_path / "nan.pt").read_bytes(), "weights")
    at = open_app({**TWO_BY_TWO, "weights": upload_id})
    error = texts(at.error)
    assert "cannot give a picture" in error and "conv_stem.weight" in error and "NaN" in error, error
    assert not at.exception and "Traceback" not in error and str(warm_cache) not in error
    assert captions(at) == TWO_BY_TWO_LABELS  # the packaged weights still show the view
