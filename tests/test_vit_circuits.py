"""Circuits on a Vision Transformer, read through the one hook (LayerTap and its token adapter): a block's
channel is a channel (its mean over the patch tokens, class token dropped), the Jacobian-vector products
differentiate through attention (its math kernel, only while they run), zero-ablating a ViT-Tiny
circuit's top inputs lowers its channel far more than ablating random ones, and `featviz circuit` runs
on a ViT. Only a missing forward-mode formula falls back to the double-backward trick; any other error
(a CUDA out-of-memory among them) propagates."""
from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import timm
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

from featviz_core import load_model
from featviz_core.analysis.circuit_grads import output_attribution
from featviz_core.analysis.circuits import circuit
from featviz_core.analysis.photoset import PhotoSet
from featviz_core.cli import main as cli_main
from featviz_core.models.tokens import math_attention

from .conftest import tiny  # noqa: F401 (fixture)
from .test_circuits import ablation_drops, drops_report

ARCH = "vit_tiny_patch16_224"
PHOTOS = PhotoSet(size=64, crops=1)  # 28 images, 4x4 patch tokens each


@pytest.fixture(scope="module")
def vit_weights(tmp_path_factory):
    """ViT-Tiny's state dict from timm's own initialization, seeded (random weights: nothing is downloaded)."""
    path = tmp_path_factory.mktemp("vit") / "vit.pt"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.save(timm.create_model(ARCH, pretrained=False).state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def vit(vit_weights):
    return load_model(f"timm:{ARCH}", device="cpu", weights=vit_weights)


@pytest.mark.usefixtures("single_thread")
def test_a_vit_circuit_reads_channels_averaged_over_patch_tokens(vit):
    doc = circuit(vit, "blocks.6", 3, source="blocks.5", photos=PhotoSet(size=64, crops=0, limit=4))
    assert doc["into"] == "blocks.7.mlp.fc1" and len(doc["inputs"]) == 192 and len(doc["feeds_into"]) == 768
    images = PhotoSet(size=64, crops=0, limit=4).images()
    with torch.no_grad():
        m = vit.module
        tokens = m.blocks[:7](m._pos_embed(m.patch_embed(vit.normalize(images))))  # (4, 1 + 16, 192)
    assert doc["activation"] == pytest.approx(float(tokens[:, 1:, 3].mean()), rel=1e-4, abs=1e-5)  # no class token
    assert abs(float(tokens[:, 0, 3].mean()) - doc["activation"]) > 1e-3  # which would have counted


@pytest.mark.usefixtures("single_thread")
def test_vit_jacobian_vector_products_agree_and_leave_the_fused_kernel_on(vit):
    images = PhotoSet(size=64, crops=0, limit=3).images()
    forward = output_attribution(vit, "blocks.5", 3, "blocks.6.mlp.fc1", images, method="forward")
    double = output_attribution(vit, "blocks.5", 3, "blocks.6.mlp.fc1", images, method="double")
    scale = np.abs(forward).max()
    assert forward.shape == (768,) and scale > 0 and np.allclose(forward, double, rtol=1e-3, atol=1e-4 * scale)
    assert torch.backends.cuda.flash_sdp_enabled()  # the math kernel only while they ran


def test_math_attention_left_out_of_order_turns_the_fused_kernels_back_on():
    first, second = math_attention(), math_attention()
    first.__enter__()
    second.__enter__()
    assert not torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.math_sdp_enabled()
    first.__exit__(None, None, None)  # another thread's, leaving first
    assert not torch.backends.cuda.flash_sdp_enabled()
    second.__exit__(None, None, None)
    assert torch.backends.cuda.flash_sdp_enabled()


VIT_ABLATED = [49, 20, 159]  # channels of blocks.6: np.random.default_rng(2).choice(192, 3, replace=False), not picked


@pytest.mark.usefixtures("single_thread")
def test_zero_ablating_a_vit_circuit_s_top_inputs_lowers_its_channel_2x_more_than_random_ones(vit):
    images = PHOTOS.images()
    report = []
    for channel in VIT_ABLATED:
        doc = circuit(vit, "blocks.6", channel, source="blocks.5", photos=PHOTOS, feeds=False)
        top, random = ablation_drops(vit, doc, images, "zero")
        report.append(drops_report(channel, top, random))
        assert top > 0 and top >= 2 * np.mean(random), report
    print(report)


@contextlib.contextmanager
def _hooked(module, hook):
    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@pytest.mark.usefixtures("single_thread")
def test_only_a_missing_forward_mode_formula_falls_back(tiny):
    images = PhotoSet(size=32, crops=0, limit=3).images()
    theta = torch.tensor([[[0.9, 0.1, 0.0], [-0.1, 0.9, 0.05]]])
    warp = lambda m, i, out: F.grid_sample(out, F.affine_grid(theta.expand(len(out), 2, 3), out.shape,  # noqa: E731
                                                              align_corners=False), align_corners=False)
    with _hooked(tiny.module.relu2, warp):  # grid_sample has no forward-mode formula in PyTorch
        fell_back = output_attribution(tiny, "relu1", 3, "relu3", images, method="forward")
        double = output_attribution(tiny, "relu1", 3, "relu3", images, method="double")
    assert np.allclose(fell_back, double, rtol=1e-6, atol=0) and np.abs(double).max() > 0

    def out_of_memory(module, inputs, out):
        if fwAD.unpack_dual(out).tangent is not None:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with _hooked(tiny.module.relu2, out_of_memory), pytest.raises(torch.OutOfMemoryError):
        output_attribution(tiny, "relu1", 3, "relu3", images, method="forward")


@pytest.mark.usefixtures("single_thread")
def test_featviz_circuit_on_a_vit_exits_0(vit_weights, tmp_path, capsys):
    out = tmp_path / "c"
    code = cli_main(["circuit", "--model", f"timm:{ARCH}", "--weights", vit_weights, "--layer", "blocks.6",
                     "--channel", "3", "--from", "blocks.5", "--photo-size", "64", "--top", "2", "--size", "32",
                     "--steps", "2", "--out", str(out), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    doc = json.loads((out / "circuit.json").read_text())
    assert (doc["layer"], doc["from"], doc["into"], len(doc["inputs"])) == ("blocks.6", "blocks.5", "blocks.7.mlp.fc1",
                                                                            192)
    assert (out / "circuit_sheet.png").stat().st_size > 0
