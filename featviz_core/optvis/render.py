"""The one optimization loop: gradient ascent on a batch of pictures, each with its own target.

`render` is a generator of `StepRecord`s and has no side effects (no printing, no files, no cache):
the command line, the dashboard, the tests and the benchmark decide what to do with the records.
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from ..errors import FeatvizError
from ..inputs.photos import check_digest
from ..models.hooks import LayerTap
from ..models.loading import LoadedModel
from ..models.switches import SharedSwitch
from ..spec.settings import RenderSettings
from . import objectives, param, transforms
from .objectives import Target
from .redirect import redirected_relu


@dataclass(frozen=True)
class Recipe:
    """A method's fixed hyper-parameters (part of ALGORITHM_VERSION, not of the settings)."""

    param: str  # "pixel" | "fourier" | "maco"
    optimizer: str  # "adam" | "nadam" | "rms" (the classic RMS-normalized gradient step)
    lr: float
    robustness: transforms.Robustness
    octaves: int = 1  # >1: start small and upscale by 1.2 per octave (classic)
    noise: float = 0.04  # amplitude of the "noise" start, in [0, 1] units
    wake_steps: int = 16  # first steps with lucid's redirected ReLU gradient (wakes channels that start off)
    eps: float = 1e-8  # the optimizer's epsilon


RECIPES = {
    # Fourier + decorrelated colour + robustness, with NAdam's step of 0.1 (README, Render speed). Its
    # Nesterov momentum (about 0.45 in a short run) climbs faster than lucid's Adam at 0.05: on 24 held-out
    # Lite0 channels 64 steps pass the z of 96 Adam steps (+2.9 % +- 0.9) and 56 about match it (-0.7 %
    # +- 1.0; bench/render_speed.py). Adam with less momentum gains less; learning-rate decays (cosine,
    # linear) lose z.
    # An epsilon of 1e-7 (torch's 1e-8 sits at the size of a weak channel's smallest gradients, where
    # NAdam turned the rounding of a batch's convolutions into a different picture: batched != alone).
    "fourier": Recipe("fourier", "nadam", 0.1, transforms.LUCID, noise=0.04, eps=1e-7),
    "maco": Recipe("maco", "adam", 0.15, transforms.LUCID, noise=0.04),
    # Keras conv_filter_visualization: noise of +-10 gray levels around 128, step of 1 gray level with
    # RMS-normalized gradients, 9 octaves growing by 1.2, no transforms.
    "classic": Recipe("pixel", "rms", 1.0 / 255, transforms.NONE, octaves=9, noise=10 / 255, wake_steps=0),
}
OPTIMIZERS = {"adam": torch.optim.Adam, "nadam": torch.optim.NAdam}


@dataclass
class StepRecord:
    step: int  # 1-based count of steps done
    total: int
    scores: torch.Tensor  # (B,) objective per picture at this step, detached, on the device
    snapshot: torch.Tensor | None  # (B, C, size, size) pictures in [0, 1] when this step was asked for


def element_generator(seed: int, target: Target) -> torch.Generator:
    """Each picture's own random stream, from the run seed and its target alone."""
    digest = hashlib.sha256(f"{seed}|{target.layer}|{target.channel}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def steps_per_octave(steps: int, octaves: int) -> list[int]:
    """`steps` shared out over `octaves` (at most one octave per step), the first octaves taking the remainder."""
    octaves = min(octaves, steps)
    return [steps // octaves + (1 if k < steps % octaves else 0) for k in range(octaves)]


def _make_param(recipe: Recipe, start: torch.Tensor, gens: list[torch.Generator]):
    if recipe.param == "fourier":
        return param.fourier_image(start)
    if recipe.param == "maco":
        return param.maco_image(start, gens)
    return param.pixel_image(start)


def _display(recipe: Recipe, images: torch.Tensor, size: int) -> torch.Tensor:
    images = param.keras_deprocess(images) if recipe.param == "pixel" else images.clamp(0, 1)
    if images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return images


def _ascend(recipe: Recipe, params: list[torch.Tensor], optimizer) -> None:
    """One ascent step; the loss was the negated score, so descending it climbs the score."""
    if optimizer is not None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return
    with torch.no_grad():
        for p in params:
            g = torch.nan_to_num(p.grad)
            rms = g.pow(2).mean(dim=tuple(range(1, g.dim())), keepdim=True).sqrt()
            p.sub_(recipe.lr * g / (rms + 1e-5))
            p.grad = None


def check_photo(settings: RenderSettings, photo) -> None:
    """A photo start needs the very photo its settings name by digest (the cache key holds the digest)."""
    if settings.init != param.PHOTO:
        return
    if photo is None:
        raise FeatvizError("The 'photo' starting image needs a photo.")
    check_digest(photo, settings.photo, "The photo given to the settings' photo start")


def _octave_plan(recipe: Recipe, settings: RenderSettings) -> list[tuple[int, int]]:
    """(size, steps) of each octave, small to full size; a single octave unless the recipe grows."""
    sizes = param.octave_sizes(settings.size, recipe.octaves) if recipe.octaves > 1 else [settings.size]
    per_octave = steps_per_octave(settings.steps, len(sizes))
    return list(zip(sizes[len(sizes) - len(per_octave):], per_octave))


def _optimizer(recipe: Recipe, params: list[torch.Tensor]):
    """The recipe's optimizer over `params`; None for the classic RMS step (_ascend)."""
    if recipe.optimizer not in OPTIMIZERS:
        return None
    return OPTIMIZERS[recipe.optimizer](params, lr=recipe.lr, eps=recipe.eps)


def _redirected(recipe: Recipe, step: int, waking: torch.Tensor) -> torch.Tensor | None:
    """The pictures the redirected ReLU acts on at `step` (None: none). All at first; on a CPU, from the
    second step only those a clamp blocked in the step before (a GPU keeps all rather than wait for it)."""
    if step >= recipe.wake_steps or (waking.device.type == "cpu" and not bool(waking.any())):
        return None
    return waking


def _climb(tap: LayerTap, image_fn, recipe: Recipe, rob_params: torch.Tensor, normalize, autocast,
           objective: objectives.Objective, waking: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One forward and backward pass of the transformed pictures; returns the scores, and which pictures
    still needed the redirect (None: not known, on a GPU).

    The redirect adds about a quarter to a step (each clamp's backward in Python, and a per-picture
    check), so it runs only for the pictures still `waking`, until switched-off channels have woken up."""
    with redirected_relu(False if waking is None else waking) as wake:
        x = transforms.apply(image_fn(), recipe.robustness, rob_params)
        with autocast:
            acts = tap.run(normalize(x))
        scores = objective(acts)
        (-scores.sum()).backward()
    if waking is None or not wake.known:
        return scores, None
    return scores, wake.blocked if wake.blocked is not None else torch.zeros_like(waking)


def render(model: LoadedModel, targets: Sequence[Target], settings: RenderSettings,
           snapshot_steps: Sequence[int] = (), objective: objectives.Objective | None = None,
           photo=None) -> Iterator[StepRecord]:
    """Optimize one picture per target; yields a record after every step.

    The last record always carries the final pictures as its snapshot. `objective` replaces the
    per-target objective named by `settings.objective` (e.g. to add a diversity term). `photo`
    (H, W, 3 uint8) is the starting picture when `settings.init` is "photo"."""
    check_photo(settings, photo)
    targets, recipe, device = list(targets), RECIPES[settings.method], model.device
    autocast = _autocast(settings, device)
    normalize = model.normalizer(device)  # mean and std built once, not every step
    gens = [element_generator(settings.seed, t) for t in targets]
    objective = objective or objectives.for_targets(settings.objective, targets)
    plan = _octave_plan(recipe, settings)
    # Every random draw is made here, once, so the loop never waits on the host.
    rob_params = transforms.draw_params(recipe.robustness, settings.steps, gens).to(device)
    image = param.start_images(settings.init, gens, model.in_channels, plan[0][0], recipe.noise, photo).to(device)
    wanted = set(snapshot_steps) | {settings.steps}
    step, waking = 0, torch.ones(len(targets), dtype=torch.bool, device=device)  # all wake at first
    with LayerTap(model.module, objective.layers) as tap, cudnn_benchmark(device):
        for size, n_steps in plan:
            if image.shape[-1] != size:
                image = F.interpolate(image, size=(size, size), mode="bicubic", align_corners=False)
            params, image_fn = _make_param(recipe, image, gens)
            optimizer = _optimizer(recipe, params)
            for _ in range(n_steps):
                scores, blocked = _climb(tap, image_fn, recipe, rob_params[step], normalize, autocast, objective,
                                         _redirected(recipe, step, waking))
                waking = waking if blocked is None else blocked
                _ascend(recipe, params, optimizer)
                step += 1
                with torch.no_grad():
                    snapshot = _display(recipe, image_fn(), settings.size) if step in wanted else None
                yield StepRecord(step, settings.steps, scores.detach(), snapshot)
            with torch.no_grad():
                image = image_fn().detach()


def _cudnn_benchmark_on():
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    return lambda: setattr(torch.backends.cudnn, "benchmark", before)


_CUDNN_BENCHMARK = SharedSwitch(_cudnn_benchmark_on)


@contextlib.contextmanager
def cudnn_benchmark(device: torch.device):
    """On CUDA, cuDNN times its kernels once and keeps the fastest (a render's shapes are the same every
    step); the process's own setting is back when the last render ends, is closed or fails. Renders on
    several threads share one switch (models/switches.py)."""
    if device.type != "cuda":
        yield
        return
    with _CUDNN_BENCHMARK.held():
        yield


def _autocast(settings: RenderSettings, device: torch.device):
    """bf16 autocast of the model's forward pass (CUDA only); the objective reads it in float32."""
    if settings.precision == "fp32":
        return contextlib.nullcontext()
    if device.type != "cuda":
        raise FeatvizError(f"Precision {settings.precision!r} needs a CUDA GPU (the model is on {device.type}): "
                           "choose fp32.")
    return torch.autocast("cuda", dtype=torch.bfloat16)


def check_finite(curves: torch.Tensor, targets: Sequence[Target]) -> None:
    """NaN/inf activations mean the model or objective broke the ascent: say which and where."""
    bad = (~torch.isfinite(curves)).any(dim=1).nonzero().flatten().tolist()
    if bad:
        first_step = int((~torch.isfinite(curves[bad[0]])).nonzero()[0]) + 1
        names = ", ".join(str(targets[b]) for b in bad[:5])
        raise FeatvizError(f"The activation became NaN or infinite (first at step {first_step}) for {names}: the "
                           "model produces non-finite gradients for these inputs; try another method or fewer steps.")
