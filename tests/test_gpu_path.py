"""The GPU path, checked on the CPU: out of memory halves the batch (logged) and the pictures do not
change; per-step constants (normalization, objective indices, colour matrix) are built once per
render; bf16 autocast is CUDA-only and off by default, and fp32 keeps the cache keys it had."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging

import pytest
import torch

from featviz_core import FeatvizError, RenderSettings, collect, load_model, render_channels
from featviz_core.optvis import objectives, param
from featviz_core.optvis.objectives import Target
from featviz_core.optvis.render import render
from featviz_core.spec.settings import ALGORITHM_VERSION, RenderSpec
from tests import tiny_model

pytestmark = pytest.mark.usefixtures("single_thread")
SETTINGS = RenderSettings(size=32, steps=5)
TARGETS = [("relu3", c) for c in range(8)]


def test_out_of_memory_halves_the_batch_says_so_and_keeps_the_pictures(tiny, caplog):
    oom = load_model("tests.tiny_model:make_oom", device="cpu")
    ran = []
    oom.module.register_forward_pre_hook(lambda _m, inputs: ran.append(inputs[0].shape[0]), prepend=True)
    with caplog.at_level(logging.WARNING, logger="featviz_core.jobs.pictures"):
        split = collect(render_channels(oom, TARGETS, SETTINGS, batch_size=8))
    assert "Out of GPU memory with 8 pictures in a batch: halving the batches to at most 4" in caplog.text
    assert "Out of GPU memory with 4 pictures in a batch: halving the batches to at most 2" in caplog.text
    assert set(ran) == {8, 4, 2}  # tried 8, then 4, then finished in batches of 2
    assert ran.count(2) == 4 * SETTINGS.steps
    whole = {r.label: r for r in collect(render_channels(tiny, TARGETS, SETTINGS, batch_size=8))}
    assert sorted(r.label for r in split) == sorted(whole)
    for r in split:
        assert r.png == whole[r.label].png and r.curve == whole[r.label].curve


def test_a_single_picture_out_of_memory_says_what_to_do(monkeypatch):
    oom = load_model("tests.tiny_model:make_oom", device="cpu")
    monkeypatch.setattr(tiny_model, "OOM_ABOVE", 0)
    with pytest.raises(FeatvizError, match="single picture: choose a smaller size"):
        collect(render_channels(oom, TARGETS[:2], SETTINGS, batch_size=2))


def _host_tensors_built(model, steps: int, monkeypatch) -> tuple[int, int]:
    """torch.tensor calls and colour matrices made during a render of `steps` steps."""
    made, matrices = [], []
    real_tensor, real_matrix = torch.tensor, param._color_matrix
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: made.append(1) or real_tensor(*a, **k))
    monkeypatch.setattr(param, "_color_matrix", lambda like: matrices.append(1) or real_matrix(like))
    targets = [Target("relu3", 0), Target("conv2", 1)]
    for _ in render(model, targets, RenderSettings(size=32, steps=steps)):
        pass
    monkeypatch.undo()
    return len(made), len(matrices)


def test_per_step_constants_are_built_once_per_render(tiny, monkeypatch):
    short, long = _host_tensors_built(tiny, 2, monkeypatch), _host_tensors_built(tiny, 9, monkeypatch)
    assert short == long
    assert long[1] == 1


def test_objective_indices_are_built_once_per_device(monkeypatch):
    objective = objectives.channel([Target("a", 1), Target("b", 2), Target("a", 0)])
    acts = {"a": torch.rand(3, 4, 5, 5), "b": torch.rand(3, 4, 5, 5)}
    first = objective(acts)
    made = []
    real_tensor = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: made.append(1) or real_tensor(*a, **k))
    again = [objective(acts) for _ in range(4)]
    assert made == []
    assert all(torch.equal(first, a) for a in again)
    assert torch.equal(first, torch.stack([acts["a"][0, 1].mean(), acts["b"][1, 2].mean(), acts["a"][2, 0].mean()]))


def test_bf16_is_cuda_only_and_fp32_keeps_its_cache_keys(tiny):
    assert RenderSettings().precision == "fp32"
    with pytest.raises(FeatvizError, match="needs a CUDA GPU.*choose fp32"):
        next(render(tiny, [Target("relu3", 0)], SETTINGS.with_(precision="bf16")))
    with pytest.raises(FeatvizError, match="fp32, bf16"):
        RenderSettings(precision="fp16")
    assert torch.backends.cudnn.benchmark is False  # set by a render on CUDA only, never at import
    spec = RenderSpec("m", "d", "relu3", 0, SETTINGS)
    old = {"v": ALGORITHM_VERSION, "model": "m", "weights": "d", "layer": "relu3", "channel": 0, "method": "fourier",
           "size": 32, "steps": 5, "seed": 0, "init": "noise", "objective": "channel"}
    assert spec.key() == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:32]
    assert RenderSpec("m", "d", "relu3", 0, SETTINGS.with_(precision="bf16")).key() != spec.key()


def test_a_failed_cuda_render_gives_cudnn_benchmark_back(tiny):
    """cuDNN times its kernels (benchmark on) while a CUDA render runs; the flag is process-wide, and the
    process must have its own setting back after, however the render ends. It is a Python setting, so a
    CPU checks it: a render told its model is on CUDA fails (no GPU here, or the weights on the CPU)."""
    assert torch.backends.cudnn.benchmark is False
    misplaced = dataclasses.replace(tiny, device=torch.device("cuda"))
    with pytest.raises((RuntimeError, AssertionError)):  # AssertionError: a torch built without CUDA
        list(render(misplaced, [Target("relu3", 0)], SETTINGS))
    assert torch.backends.cudnn.benchmark is False


def test_cudnn_benchmark_is_on_while_a_cuda_render_runs_and_back_when_it_is_closed(tiny, monkeypatch):
    """The render's context turns the flag on for CUDA only and restores it on exit or failure; a render
    stopped after its first step (a visitor left) restores it when it is closed."""
    from featviz_core.optvis import render as render_module

    with render_module.cudnn_benchmark(torch.device("cuda")):
        assert torch.backends.cudnn.benchmark is True
    with render_module.cudnn_benchmark(torch.device("cpu")):
        assert torch.backends.cudnn.benchmark is False
    with pytest.raises(KeyError), render_module.cudnn_benchmark(torch.device("cuda")):
        raise KeyError("a render that fails")
    assert torch.backends.cudnn.benchmark is False
    real = render_module.cudnn_benchmark
    monkeypatch.setattr(render_module, "cudnn_benchmark", lambda device: real(torch.device("cuda")))
    steps = render(tiny, [Target("relu3", 0)], SETTINGS)  # on the CPU, its loop run as if on CUDA
    next(steps)
    during = torch.backends.cudnn.benchmark
    steps.close()
    assert during is True and torch.backends.cudnn.benchmark is False


def test_renders_on_two_threads_leaving_out_of_order_give_cudnn_benchmark_back():
    """A render on another thread starts inside this one and ends after it: the process's setting is back
    once the last of them ends, not left on by the first one's restore."""
    from featviz_core.optvis import render as render_module

    first, second = render_module.cudnn_benchmark(torch.device("cuda")), render_module.cudnn_benchmark(
        torch.device("cuda"))
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert torch.backends.cudnn.benchmark is True  # the second render still runs
    second.__exit__(None, None, None)
    assert torch.backends.cudnn.benchmark is False
