"""Any timm model by name (`timm:NAME`, offline with --weights), and Vision Transformers: their blocks
and MLP hidden units as feature maps, patch tokens laid back on their grid, class token dropped."""
from __future__ import annotations

import pytest
import timm
import torch

from featviz_core import FeatvizError, RenderSettings, collect, load_model, render_channels
from featviz_core.cli import main as cli_main
from featviz_core.models import LayerTap


def _tiny_vit(**kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2,
                                 num_classes=10, **kwargs)


@pytest.fixture(scope="module")
def vit():
    return load_model(_tiny_vit(), device="cpu", mean=(0.5,) * 3, std=(0.5,) * 3, input_size=32)


def test_a_timm_cnn_by_name_renders_with_local_weights(tmp_path, capsys, store, single_thread):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), tmp_path / "r18.pt")
    model = load_model("timm:resnet18", device="cpu", weights=str(tmp_path / "r18.pt"))
    cfg = timm.create_model("resnet18", pretrained=False).pretrained_cfg
    assert (model.mean, model.std, model.input_size) == (tuple(cfg["mean"]), tuple(cfg["std"]), cfg["input_size"][-1])
    assert {"act1", "layer1.0", "layer2", "layer4", "logits"} <= set(model.layers)
    code = cli_main(["render", "--model", "timm:resnet18", "--weights", str(tmp_path / "r18.pt"), "--layer",
                     "layer2", "--channels", "0-1", "--size", "32", "--steps", "6", "--no-check",
                     "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    assert code == 0, capsys.readouterr().err
    assert len(list((tmp_path / "out").rglob("layer2*.png"))) == 2


def test_unknown_timm_names_suggest_close_ones():
    with pytest.raises(FeatvizError, match=r"Unknown timm model 'resnet181'.*timm:resnet18"):
        load_model("timm:resnet181", device="cpu", weights="unused.pt")


def test_vit_layers_are_token_grids(vit, capsys):
    assert list(vit.layers) == ["blocks.0.mlp.fc1", "blocks.0", "blocks.1.mlp.fc1", "blocks.1", "logits"]
    block, fc1 = vit.layers["blocks.1"], vit.layers["blocks.0.mlp.fc1"]
    assert (block.channels, block.height, block.width, block.tokens) == (192, 4, 4, True)
    assert (fc1.channels, fc1.height, fc1.width, fc1.tokens) == (768, 4, 4, True)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad(), LayerTap(vit.module, ["blocks.1"]) as tap:
        grid = tap.run(vit.normalize(x))["blocks.1"]
        tokens = vit.module.blocks(vit.module._pos_embed(vit.module.patch_embed(vit.normalize(x))))
    assert torch.allclose(grid[0, :, 1, 2], tokens[0, 1 + 1 * 4 + 2], atol=1e-5)  # row 1, col 2; class token out
    from featviz_core.cli.listing import cmd_layers

    cmd_layers(vit)
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("blocks.1 ")][0]
    assert row.split()[-3:] == ["192", "4x4", "tokens"]


def test_vit_channel_and_fc1_neuron_render_real_pictures(vit, store, single_thread):
    targets = [("blocks.1", 3), ("blocks.0.mlp.fc1", 5)]
    start = collect(render_channels(vit, targets, RenderSettings(size=48, steps=1, objective="neuron"), store))
    done = collect(render_channels(vit, targets, RenderSettings(size=48, steps=24, objective="neuron"), store))
    for first, last in zip(start, done):
        assert last.image.shape == (48, 48, 3) and last.curve[-1] > last.curve[0]
        assert last.image.std() > first.image.std(), (last.label, last.image.std(), first.image.std())
    channel = collect(render_channels(vit, targets[:1], RenderSettings(size=32, steps=12), store))[0]
    assert channel.curve[-1] > channel.curve[0] and channel.image.std() > 5


def test_a_vit_with_register_tokens_drops_them(single_thread):
    model = load_model(_tiny_vit(reg_tokens=2), device="cpu", input_size=32)
    assert model.module.num_prefix_tokens == 3 and model.layers["blocks.0"].height == 4


def test_a_token_s_exemplar_crop_is_its_patch(vit):
    """Exemplars of a ViT layer are cropped to the token's own patch: boxes on the 8 px patch grid."""
    from featviz_core.analysis import measure

    field = measure(vit, "blocks.1")
    for row, col in ((0, 0), (1, 2), (3, 3)):
        x0, y0, x1, y1 = field.box(row, col, vit.input_size)
        assert (x0, y0, x1, y1) == (col * 8, row * 8, (col + 1) * 8, (row + 1) * 8)
