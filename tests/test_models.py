"""Model zoo: real Lite0 weights, torchvision paths with local state dicts, weight-file safety,
error messages that list valid choices, custom factories, and the layer tap."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from featviz_core import FeatvizError, list_models, load_model
from featviz_core.models import zoo
from featviz_core.models.hooks import LOGITS, LayerTap

from .conftest import count_forwards

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("single_thread")


def _suggestions(message: str) -> list[str]:
    m = re.search(r"Did you mean ([^?]*)\?", message)
    assert m, f"no suggestion in: {message}"
    return re.findall(r"'([^']*)'", m.group(1))


# ---------------------------------------------------------------- Lite0 (real, packaged weights)

@pytest.fixture(scope="module")
def lite0():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # see conftest.single_thread: loading took 12 s instead of 0.7 s on busy cores
    try:
        return load_model("lite0", device="cpu")
    finally:
        torch.set_num_threads(before)


@pytest.mark.real_model
def test_lite0_classifies_chelsea_as_tabby(lite0):
    import skimage.data

    photo = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float().unsqueeze(0) / 255
    x = F.interpolate(photo, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    assert lite0.mean == lite0.std == (0.5, 0.5, 0.5)
    with torch.no_grad():
        logits = lite0.module(lite0.normalize(x))
    assert logits.shape == (1, 1000)
    assert int(logits.argmax()) == 285  # Egyptian cat
    # Without the real weights the prediction would be near uniform.
    assert float(logits.softmax(1).max()) > 0.3


@pytest.mark.real_model
def test_lite0_layer_list(lite0):
    assert lite0.in_channels == 3 and lite0.input_size == 224
    names = list(lite0.layers)
    assert names[-1] == LOGITS and lite0.layers[LOGITS].channels == 1000
    info = lite0.layers["blocks.3"]
    assert (info.channels, info.height, info.width) == (80, 14, 14)
    assert lite0.resolve_layer("stem") == "bn1" and lite0.resolve_layer("head") == "bn2"
    # Shallow to deep: spatial size never grows along the list.
    sizes = [lite0.layers[n].height for n in names[:-1]]
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.real_model
def test_unknown_layer_suggests_nearest_and_lists_valid(lite0):
    with pytest.raises(FeatvizError) as err:
        lite0.resolve_layer("blocks.33")
    msg = str(err.value)
    assert "'blocks.33'" in msg
    assert _suggestions(msg)[0] == "blocks.3"
    for name in lite0.layers:
        assert name in msg
    assert "bn1 (stem)" in msg


@pytest.mark.real_model
def test_channel_out_of_range_names_count(lite0):
    lite0.check_channel("blocks.3", 79)  # the last valid one
    for bad in (80, -1):
        with pytest.raises(FeatvizError, match=r"80 channels \(0-79\)"):
            lite0.check_channel("blocks.3", bad)


def test_unknown_model_lists_choices_and_suggests():
    with pytest.raises(FeatvizError) as err:
        load_model("resnet19", device="cpu")
    msg = str(err.value)
    assert "resnet18" in _suggestions(msg)
    for name in list_models():
        assert name in msg
    assert "package.module:factory" in msg


def test_cuda_request_without_gpu_is_refused():
    """In a fresh process that sees no GPU (CUDA_VISIBLE_DEVICES empty), so it runs on GPU machines too."""
    code = ("from featviz_core import FeatvizError, load_model\n"
            "try:\n    load_model('tests.tiny_model:make', device='cuda')\nexcept FeatvizError as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.rstrip("\n").endswith("no CUDA GPU is available. Valid devices here: cpu."), \
        done.stdout + done.stderr[-2000:]


def test_unknown_device_is_refused():
    with pytest.raises(FeatvizError, match="Valid devices"):
        load_model("tests.tiny_model:make", device="tpu")


# ---------------------------------------------------------------- torchvision with local state dicts

def _resnet18_file(path, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, path)
    return state


def _same_function(loaded, reference: nn.Module, size: int = 64) -> None:
    """The loaded module (batch norms may be folded into convs) computes what `reference` computes."""
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = reference.eval()(x), loaded.module(x)
    assert torch.allclose(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max())), float((got - want).abs().max())


def test_resnet18_local_weights_really_load(tmp_path):
    a = _resnet18_file(tmp_path / "a.pt", seed=1)
    b = _resnet18_file(tmp_path / "b.pt", seed=2)
    assert not torch.equal(a["fc.weight"], b["fc.weight"])
    ma = load_model("resnet18", device="cpu", weights=str(tmp_path / "a.pt"))
    assert torch.equal(ma.module.fc.weight, a["fc.weight"])
    assert torch.equal(ma.module.fc.bias, a["fc.bias"])
    ref = torchvision.models.resnet18(weights=None)
    ref.load_state_dict(a)
    _same_function(ma, ref)
    assert ma.layers["layer4"].channels == 512 and ma.layers[LOGITS].channels == 1000
    assert ma.resolve_layer("stem") == "relu"
    mb = load_model("resnet18", device="cpu", weights=str(tmp_path / "b.pt"))
    assert torch.equal(mb.module.fc.weight, b["fc.weight"])
    assert ma.digest != mb.digest


def test_googlenet_accepts_state_dict_with_aux_heads(tmp_path):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        state = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True).state_dict()
    assert any(k.startswith("aux1.") for k in state) and any(k.startswith("aux2.") for k in state)
    torch.save(state, tmp_path / "g.pt")
    m = load_model("googlenet", device="cpu", weights=str(tmp_path / "g.pt"))
    assert torch.equal(m.module.fc.weight, state["fc.weight"])
    ref = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False, transform_input=True)
    ref.load_state_dict({k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))})
    _same_function(m, ref)
    assert m.resolve_layer("mixed4a") == "inception4a"
    assert m.layers["inception4a"].channels == 512
    assert m.layers["inception5b"].channels == 1024


def test_vgg16_keras_aliases_match_the_architecture():
    """Building VGG16 for real takes ~20 s with a 528 MB state dict, so check the alias table against
    the architecture built on the meta device (no weights): Keras' blockK_convJ is the J-th conv
    after the (K-1)-th max-pool."""
    with torch.device("meta"):
        vgg = torchvision.models.vgg16(weights=None)
    expected, block, conv = {}, 1, 0
    for i, layer in enumerate(vgg.features):
        if isinstance(layer, nn.Conv2d):
            conv += 1
            expected[f"block{block}_conv{conv}"] = f"features.{i}"
        elif isinstance(layer, nn.MaxPool2d):
            block, conv = block + 1, 0
    table = dict(zip(zoo._VGG16_KERAS, (f"features.{i}" for i in zoo._VGG16_CONVS)))
    assert table == expected
    assert table["block5_conv3"] == "features.28"
    assert len(zoo._VGG16_KERAS) == len(zoo._VGG16_CONVS) == 13


# ---------------------------------------------------------------- weight-file safety and mismatches

def test_corrupt_weights_file(tmp_path):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(FeatvizError, match="not a readable PyTorch state dict"):
        load_model("resnet18", device="cpu", weights=str(path))


def test_missing_weights_file(tmp_path):
    with pytest.raises(FeatvizError, match="does not exist"):
        load_model("resnet18", device="cpu", weights=str(tmp_path / "nope.pt"))


class _Payload:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pt"
    torch.save({"conv1.weight": torch.zeros(1), "x": _Payload(str(marker))}, path)
    with pytest.raises(FeatvizError, match="not a readable PyTorch state dict"):
        load_model("tests.tiny_model:make", device="cpu", weights=str(path))
    assert not marker.exists()


def test_file_without_tensors_is_refused(tmp_path):
    path = tmp_path / "numbers.pt"
    torch.save({"conv1.weight": 1, "conv1.bias": 2}, path)
    with pytest.raises(FeatvizError, match="does not hold a state dict"):
        load_model("tests.tiny_model:make", device="cpu", weights=str(path))


def test_state_dict_of_wrong_architecture(tmp_path):
    _resnet18_file(tmp_path / "r.pt", seed=0)
    with pytest.raises(FeatvizError) as err:
        load_model("alexnet", device="cpu", weights=str(tmp_path / "r.pt"))
    msg = str(err.value)
    assert "do not fit alexnet" in msg and "missing" in msg and "unexpected" in msg


def test_state_dict_with_wrong_shapes_names_the_key(tmp_path):
    from tests.tiny_model import build

    state = build(3).state_dict()
    state["conv2.weight"] = torch.zeros(16, 8, 5, 5)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(FeatvizError,
                       match=r"wrong shapes \(e.g. conv2.weight: file \(16, 8, 5, 5\), model \(16, 8, 3, 3\)\)"):
        load_model("tests.tiny_model:make", device="cpu", weights=str(tmp_path / "w.pt"))


def test_offline_download_says_use_weights(tmp_path, monkeypatch):
    """No cached download (empty TORCH_HOME) and no network: a clear message pointing at --weights.
    Connections are refused outright so the test is offline even on a machine with internet."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def refuse(*_a, **_k):
        raise OSError("network is unreachable (test is offline)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(FeatvizError) as err:
        load_model("resnet18", device="cpu")
    msg = str(err.value)
    assert "--weights" in msg and "'resnet18'" in msg
    assert str(tmp_path / "torch_home") in msg  # where a download would be cached


# ---------------------------------------------------------------- custom factories

def test_custom_factory_module_path():
    m = load_model("tests.tiny_model:make", device="cpu")
    assert m.name == "tests.tiny_model:make"
    assert m.in_channels == 3 and m.input_size == 64
    assert [(n, i.channels, i.height) for n, i in m.layers.items()] == [
        ("conv1", 8, 64), ("relu1", 8, 64), ("conv2", 16, 32), ("relu2", 16, 32),
        ("conv3", 16, 32), ("relu3", 16, 32), (LOGITS, 10, 1)]
    assert not m.module.training
    assert not any(p.requires_grad for p in m.module.parameters())
    assert m.module.relu1.inplace is False  # built in-place; in-place would corrupt tapped outputs


def test_custom_factory_grayscale_cifar_like():
    m = load_model("tests.tiny_model:make_gray", device="cpu")
    assert m.in_channels == 1 and m.input_size == 32
    assert m.mean == (0.5,) and m.std == (0.25,)
    assert m.layers["conv1"].height == 32 and m.layers["conv3"].height == 16
    assert m.module.conv1.in_channels == 1


def test_custom_factory_weights_and_digest(tmp_path):
    from tests.tiny_model import build

    other = build(3, seed=5).state_dict()
    torch.save(other, tmp_path / "t.pt")
    plain = load_model("tests.tiny_model:make", device="cpu")
    loaded = load_model("tests.tiny_model:make", device="cpu", weights=str(tmp_path / "t.pt"))
    assert torch.equal(loaded.module.conv3.weight, other["conv3.weight"])
    assert loaded.digest != plain.digest
    # The digest identifies the weights: the same weights give the same digest.
    assert load_model("tests.tiny_model:make", device="cpu").digest == plain.digest
    assert load_model("tests.tiny_model:make_other_seed", device="cpu").digest != plain.digest


@pytest.mark.parametrize("spec, needle", [
    ("tests.tiny_model:nope", "Cannot import model factory"),
    ("tests.no_such_module:make", "Cannot import model factory"),
    ("tests.tiny_model:make_wrong_type", "must return ModelParts"),
])
def test_bad_factories(spec, needle):
    with pytest.raises(FeatvizError, match=needle):
        load_model(spec, device="cpu")


# ---------------------------------------------------------------- layer tap

def test_layer_tap_stops_early_and_removes_hooks(tiny):
    net = tiny.module
    x = torch.rand(2, 3, 32, 32)
    with count_forwards(net.conv3) as conv3_calls, count_forwards(net.fc) as fc_calls:
        with torch.no_grad(), LayerTap(net, ["relu1"]) as tap:
            assert len(net.relu1._forward_hooks) == 1
            out = tap.run(x)
        assert list(out) == ["relu1"] and out["relu1"].shape == (2, 8, 32, 32)
        assert conv3_calls == [] and fc_calls == []  # nothing after relu1 ran
        # The tapped value is the real layer output.
        with torch.no_grad():
            assert torch.equal(out["relu1"], net.relu1(net.conv1(x)))
        # With logits tapped, the whole network runs and its output is recorded.
        with torch.no_grad(), LayerTap(net, ["conv2", LOGITS]) as tap:
            out = tap.run(x)
        assert len(conv3_calls) == 1 and len(fc_calls) == 1
        with torch.no_grad():
            assert torch.equal(out[LOGITS], net(x))
    assert all(len(m._forward_hooks) == 0 for m in net.modules())


def test_layer_tap_removes_hooks_after_an_error(tiny):
    net = tiny.module
    with pytest.raises(RuntimeError):
        with LayerTap(net, ["conv1", "conv3"]) as tap:
            tap.run(torch.rand(1, 5, 16, 16))  # wrong channel count
    assert all(len(m._forward_hooks) == 0 for m in net.modules())


def test_folding_batch_norms_keeps_listed_layer_outputs():
    """Folding is an optimization: every listed layer must still output what the model computes."""
    from tests.tiny_model import make_bn

    loaded = load_model("tests.tiny_model:make_bn", device="cpu")
    assert {"conv1", "bn1", "relu1", "conv2"} <= set(loaded.layers)
    reference = make_bn().module.eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for layer in ("bn1", "relu1", "conv2", "conv1"):
        with torch.no_grad(), LayerTap(loaded.module, [layer]) as tap, LayerTap(reference, [layer]) as ref_tap:
            got, want = tap.run(loaded.normalize(x))[layer], ref_tap.run(loaded.normalize(x))[layer]
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=f"layer {layer}")
