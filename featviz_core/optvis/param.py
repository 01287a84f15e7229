"""Image parameterizations: how a batch of pictures is represented while it is optimized.

Each factory returns `(parameters, image_fn)`; `image_fn()` gives the current batch as a
(B, C, H, W) tensor. `start_images` builds the starting pictures (noise, gray, gradient); every
element draws its noise from its own generator so a picture never depends on its batch-mates.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..inputs.photos import square
from ..spec.settings import INITS, PHOTO  # noqa: F401 (re-exported: the starts this module builds)

# Lucid's colour decorrelation: square root of the ImageNet colour covariance (its SVD form).
_COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_MATRIX = _COLOR_CORRELATION_SVD_SQRT / _COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()


def photo_images(photo: np.ndarray, batch: int, channels: int, size: int) -> torch.Tensor:
    """A photo (H, W, 3 uint8) as `batch` copies of its centre square in [0, 1], (B, C, size, size)."""
    image = torch.from_numpy(square(photo, size).astype(np.float32) / 255).permute(2, 0, 1)
    if channels == 1:
        image = image.mean(dim=0, keepdim=True)
    return image.unsqueeze(0).repeat(batch, 1, 1, 1)


def start_images(init: str, generators: list[torch.Generator], channels: int, size: int, noise: float,
                 photo: np.ndarray | None = None) -> torch.Tensor:
    """Starting pictures in [0, 1] on the CPU: gray 0.5, plus uniform noise of +-`noise`, a colour ramp,
    or the photo."""
    batch = len(generators)
    if init == PHOTO:
        return photo_images(photo, batch, channels, size)
    if init == "gray":
        return torch.full((batch, channels, size, size), 0.5)
    if init == "gradient":
        ramp = torch.linspace(0.15, 0.85, size)
        planes = [ramp.view(1, -1).expand(size, size), ramp.view(-1, 1).expand(size, size),
                  ramp.flip(0).view(1, -1).expand(size, size)]
        img = torch.stack([planes[c % 3] for c in range(channels)])
        return img.unsqueeze(0).repeat(batch, 1, 1, 1)
    noise_imgs = [torch.rand(channels, size, size, generator=g) for g in generators]
    return 0.5 + (torch.stack(noise_imgs) - 0.5) * 2 * noise


def pixel_image(start: torch.Tensor):
    """Plain pixels, unbounded (the classic recipe; deprocessing brings them back to [0, 1])."""
    pixels = start.clone().requires_grad_(True)
    return [pixels], lambda: pixels


def _freq_scale(size: int, decay_power: float, device) -> torch.Tensor:
    fy = torch.fft.fftfreq(size, device=device).view(-1, 1)
    fx = torch.fft.rfftfreq(size, device=device).view(1, -1)
    freqs = torch.sqrt(fx * fx + fy * fy)
    return 1.0 / torch.clamp(freqs, min=1.0 / size) ** decay_power


def _color_matrix(like: torch.Tensor) -> torch.Tensor:
    """The colour matrix on `like`'s device, made once per picture parameterization (not per step)."""
    return _COLOR_MATRIX.to(like.device, like.dtype)


def _decorrelated_to_rgb(t: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    if t.shape[1] != 3:
        return t
    return torch.einsum("bchw,dc->bdhw", t, matrix)


def _rgb_to_decorrelated(t: torch.Tensor) -> torch.Tensor:
    if t.shape[1] != 3:
        return t
    inverse = torch.linalg.inv(_COLOR_MATRIX).to(t.device, t.dtype)
    return torch.einsum("bchw,dc->bdhw", t, inverse)


_FOURIER_GAIN = 4.0  # lucid's "magic" divisor that keeps the starting sigmoid out of saturation


def fourier_image(start: torch.Tensor, decay_power: float = 1.0):
    """Lucid's parameterization: a 1/f-scaled spectrum, decorrelated colour, sigmoid to [0, 1].

    The spectrum is initialised to reproduce `start` exactly (inverting sigmoid, colour and FFT),
    so gray, noise and gradient starts mean the same thing for every method."""
    size = start.shape[-1]
    scale = _freq_scale(size, decay_power, start.device)
    matrix = _color_matrix(start)
    logits = torch.logit(start.clamp(1e-3, 1 - 1e-3))
    spectrum = torch.fft.rfft2(_rgb_to_decorrelated(logits) * _FOURIER_GAIN, norm="ortho") / scale
    spectrum = torch.view_as_real(spectrum).contiguous().requires_grad_(True)

    def image_fn() -> torch.Tensor:
        spatial = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=(size, size), norm="ortho")
        return torch.sigmoid(_decorrelated_to_rgb(spatial / _FOURIER_GAIN, matrix))

    return [spectrum], image_fn


def maco_image(start: torch.Tensor, generators: list[torch.Generator], decay_power: float = 1.0, contrast: float = 1.5):
    """MaCo (Fel et al. 2023): only the Fourier phase is optimized; the magnitude is fixed to the
    1/f spectrum of natural images, so the picture cannot drift into high-frequency noise.

    The starting phase is that of `start` plus a little per-element noise (a flat gray has no phase)."""
    batch, channels, size, _ = start.shape
    magnitude = _freq_scale(size, decay_power, start.device)
    matrix = _color_matrix(start)
    jitter = torch.stack([torch.randn(channels, size, size, generator=g) for g in generators]).to(start.device)
    phase = torch.angle(torch.fft.rfft2(_rgb_to_decorrelated(start - 0.5) + 1e-2 * jitter, norm="ortho"))
    phase = phase.contiguous().requires_grad_(True)

    def image_fn() -> torch.Tensor:
        spatial = torch.fft.irfft2(torch.polar(magnitude.expand_as(phase), phase), s=(size, size), norm="ortho")
        mean = spatial.mean(dim=(1, 2, 3), keepdim=True)
        std = spatial.std(dim=(1, 2, 3), keepdim=True) + 1e-6
        return torch.sigmoid(_decorrelated_to_rgb((spatial - mean) / std, matrix) * contrast)

    return [phase], image_fn


def keras_deprocess(images: torch.Tensor) -> torch.Tensor:
    """The original Keras example's deprocess: standardize each picture, 0.25 std around 0.5, clip."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    std = images.std(dim=(1, 2, 3), keepdim=True)
    return ((images - mean) / (std + 1e-5) * 0.25 + 0.5).clamp(0, 1)


def to_uint8(images: torch.Tensor):
    """(B, C, H, W) in [0, 1] -> numpy (B, H, W, C) uint8."""
    return (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def octave_sizes(final_size: int, octaves: int, factor: float = 1.2) -> list[int]:
    """The classic recipe's sizes: start at final / factor**(octaves-1), grow by `factor` per octave."""
    return [max(8, int(math.floor(final_size / factor ** k))) for k in reversed(range(octaves))]
