"""Any named module as a layer (not only the listed ones), on the tiny net whose conv2 is a block of a
conv and a batch norm (tests/tiny_model.py:make_block): the module list, reading a folded conv as its
own output, and rendering, scanning and circuits of an inner module as of a listed layer."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from featviz_core import FeatvizError, RenderSettings, collect, load_model, render_channels
from featviz_core.analysis import selfcheck
from featviz_core.analysis.circuits import circuit
from featviz_core.analysis.photoset import PhotoSet
from featviz_core.analysis.scan import scan_folder
from featviz_core.cli.main import main
from featviz_core.models.hooks import LayerTap
from tests.exemplar_fixtures import build_folder
from tests.tiny_model import make_block

BLOCK = "tests.tiny_model:make_block"
INNER = ["conv2.0", "conv2.1"]  # the block's conv and batch norm: not listed


@pytest.fixture(scope="module")
def block():
    return load_model(BLOCK, device="cpu")


def _reference(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The unfolded net's own outputs of the block's parts, from plain forward hooks."""
    net, seen = make_block().module.eval(), {}
    for name in INNER:
        dict(net.named_modules())[name].register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
    with torch.no_grad():
        net(x)
    return seen


def test_every_module_is_a_layer_in_forward_order(block):
    assert [n for n in INNER + ["pool"] if n in block.layers] == []
    assert list(block.modules) == ["conv1", "relu1", "conv2.0", "conv2.1", "conv2", "relu2", "conv3", "relu3", "pool"]
    assert [(i.channels, i.height, i.width) for i in map(block.info, INNER + ["pool"])] == [(16, 32, 32)] * 2 + [
        (16, 1, 1)]
    assert block.depth("relu1") < block.depth("conv2.0") < block.depth("conv2") < block.depth("logits")
    assert block.resolve_layer("conv2.0") == "conv2.0"


def test_a_conv_with_a_folded_batch_norm_is_read_as_its_own_output(block):
    assert isinstance(block.module.conv2[1], nn.Identity)  # the batch norm was folded into conv2.0
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), LayerTap(block.module, INNER) as tap:
        got = tap.run(x.contiguous(memory_format=torch.channels_last))
    want = _reference(x)
    for name in INNER:  # measured: max |difference| ~1e-6 of values up to ~10
        assert torch.allclose(got[name], want[name], rtol=1e-4, atol=1e-4), name
    assert not torch.allclose(want["conv2.0"], want["conv2.1"], atol=1e-2)  # the fold is no identity


def test_an_inner_module_renders_pictures_that_drive_it(block, single_thread):
    """Channels 0 and 5 of conv2.0 have negative batch-norm scales: read after the fold they are driven
    the wrong way (measured: self-check z -1.1 and -3.7; read as the conv's own output, 1.2 and 3.6)."""
    settings = RenderSettings(size=64, steps=32)
    results = collect(render_channels(block, [("conv2.0", 0), ("conv2.0", 5)], settings))
    scores = selfcheck.score_pictures(block, [r.image for r in results], "conv2.0", [0, 5])
    for r, s in zip(results, scores):
        assert r.layer == "conv2.0" and r.curve[-1] > r.curve[0]
        assert s.z > 0.5, (s.channel, s.z)


def test_a_scan_of_an_inner_module_finds_what_the_same_listed_conv_finds(block, tiny, tmp_path, single_thread):
    """conv2.0 is the plain tiny net's listed conv2 (same weights): the same photos, the same peaks."""
    folder = str(build_folder(tmp_path))
    *_, inner = scan_folder(block, folder, ["conv2.0"], 3, None, shard_size=8, batch=4)
    *_, listed = scan_folder(tiny, folder, ["conv2"], 3, None, shard_size=8, batch=4)
    for channel in ("0", "5", "15"):
        got, want = inner.result["layers"]["conv2.0"][channel], listed.result["layers"]["conv2"][channel]
        assert [e["image"] for e in got] == [e["image"] for e in want]
        assert [e["activation"] for e in got] == pytest.approx([e["activation"] for e in want], rel=1e-4, abs=1e-4)


def test_a_circuit_of_an_inner_conv_adds_up_to_its_activation(block, single_thread):
    doc = circuit(block, "conv2.0", 5, photos=PhotoSet(size=64, crops=1, limit=6))
    assert doc["from"] == "relu1" and doc["into"] == "conv2"  # the listed layers around it
    total = sum(e["attribution"] for e in doc["inputs"])
    bias = float(make_block().module.conv2[0].bias[5].detach())  # the conv's own bias, before the fold
    assert total + bias == pytest.approx(doc["activation"], rel=1e-4, abs=1e-5)


def test_layers_all_lists_every_module_and_the_plain_list_says_so(capsys):
    assert main(["layers", "--model", BLOCK, "--device", "cpu", "--all"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:-1]]
    assert [r[0] for r in rows] == list(load_model(BLOCK, device="cpu").modules) + ["logits"]
    assert ["conv2.0", "16", "32x32"] in rows and ["pool", "16", "1x1"] in rows
    assert main(["layers", "--model", BLOCK, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "conv2.0" not in out and "featviz layers --all" in out


def test_an_unknown_module_names_the_listed_layers_and_the_full_list(block):
    with pytest.raises(FeatvizError) as error:
        block.resolve_layer("conv2.7")
    message = str(error.value)
    assert "Unknown layer 'conv2.7'" in message and "'conv2.0'" in message.split("?")[0]
    assert "relu3" in message and "featviz layers --all" in message and "conv2.1" not in message.split("Valid")[1]


@pytest.mark.real_model
@pytest.mark.usefixtures("single_thread")
def test_lite0_expanded_units_inside_a_block_render_a_picture_that_excites_them():
    """blocks.5.0.bn2: the expanded units after the depthwise conv, read before their ReLU6 clamp."""
    model = load_model("lite0", device="cpu")
    assert model.info("blocks.5.0.bn2").channels == 672 and "blocks.5.0.bn2" not in model.layers
    (result,) = collect(render_channels(model, [("blocks.5.0.bn2", 7)], RenderSettings()))
    (score,) = selfcheck.score_pictures(model, [result.image], "blocks.5.0.bn2", [7])
    assert result.image.std() > 20 and result.curve[-1] > result.curve[0]
    assert score.z > 2, (score.z, score.rank)


def test_a_vits_inner_token_module_is_a_grid_layer_and_its_attention_maps_are_not(single_thread):
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2,
                                num_classes=10)
    vit = load_model(net, device="cpu", mean=(0.5,) * 3, std=(0.5,) * 3, input_size=32)
    info = vit.info(vit.resolve_layer("blocks.1.attn"))
    assert (info.channels, info.height, info.width, info.tokens) == (192, 4, 4, True)
    assert "blocks.1.attn" not in vit.layers and "blocks.1.attn.q_norm" not in vit.modules  # (B, heads, N, d)
    x, seen = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)), {}
    vit.module.blocks[1].attn.register_forward_hook(lambda m, i, o: seen.__setitem__("tokens", o))
    with torch.no_grad(), LayerTap(vit.module, ["blocks.1.attn"]) as tap:
        grid = tap.run(vit.normalize(x))["blocks.1.attn"]
    assert torch.equal(grid, seen["tokens"][:, 1:].reshape(2, 4, 4, 192).permute(0, 3, 1, 2))
    (result,) = collect(render_channels(vit, [("blocks.1.attn", 3)], RenderSettings(size=32, steps=12)))
    assert result.curve[-1] > result.curve[0]


def test_an_inner_module_has_concepts_pictured_like_a_listed_layer(block, single_thread):
    from featviz_core.analysis.concepts import learn_concepts
    from featviz_core.analysis.concepts_render import render_concepts
    from featviz_core.analysis.photoset import PhotoSet
    from featviz_core.jobs.runner import collect
    from featviz_core.spec import RenderSettings

    doc = learn_concepts(block, "conv2.0", k=3, photos=PhotoSet(size=32, crops=1, limit=4))
    assert doc["layer"] == "conv2.0" and len(doc["concepts"]) == 3
    assert all(len(c["direction"]) == block.info("conv2.0").channels for c in doc["concepts"])
    results = collect(render_concepts(block, doc, RenderSettings(size=32, steps=8)))
    assert sorted(r.channel for r in results) == [0, 1, 2] and all(r.curve[-1] > r.curve[0] for r in results)


def test_stored_circuits_and_scan_shards_of_inner_modules_are_served_back(block, tmp_path, single_thread):
    """The checks of a stored circuit and a stored scan shard read an inner module's channels as a listed
    layer's: a rerun is served from the store (a circuit from an inner module, a resumed scan of one)."""
    from featviz_core import Store

    store = Store(str(tmp_path / "cache"))
    try:
        photos = PhotoSet(size=64, crops=1, limit=6)
        first = circuit(block, "relu2", 3, source="conv2.0", photos=photos, store=store)
        assert circuit(block, "relu2", 3, source="conv2.0", photos=photos, store=store) == first
        folder = str(build_folder(tmp_path / "photos"))
        *_, done = scan_folder(block, folder, ["conv2.0"], 3, store, shard_size=8, batch=4)
        store._cache.delete(f"json:exemplars:result:{done.result['scan_key']}")  # killed before the merge was kept
        *_, again = scan_folder(block, folder, ["conv2.0"], 3, store, shard_size=8, batch=4)
        assert again.resumed == again.total and again.result["layers"] == done.result["layers"]
    finally:
        store.close()
