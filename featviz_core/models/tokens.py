"""Vision Transformers (and any timm model whose blocks emit tokens): the blocks' outputs and their MLP
hidden units as feature maps. A block's output is (batch, tokens, channels); dropping the class and
register tokens (timm's `num_prefix_tokens`) and laying the patch tokens back on their grid gives
(batch, channels, rows, cols), which every objective already reads.

`TokenGrid` is the model's output adapter: LayerTap (hooks.py) applies it to the outputs it records.
It sits on the module as the attribute named ADAPTER, so it follows the module through copies and
pickles (a Ray actor's copy too)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..errors import FeatvizError
from .hooks import ADAPTER, LOGITS
from .switches import SharedSwitch


@dataclass(frozen=True)
class TokenGrid:
    prefix: int  # class and register tokens ahead of the patch tokens
    layers: frozenset[str]

    def __call__(self, name: str, output):
        if name not in self.layers or not isinstance(output, torch.Tensor) or output.dim() != 3:
            return output
        batch, count, channels = output.shape
        patches = count - self.prefix
        side = math.isqrt(max(patches, 0))
        if side * side != patches or side == 0:
            raise FeatvizError(f"Layer {name!r} has {patches} patch tokens, which do not lie on a square grid: "
                               "feed the model square images.")
        grid = output[:, self.prefix:].reshape(batch, side, side, channels)
        return grid.permute(0, 3, 1, 2)


def is_token_model(module: nn.Module) -> bool:
    """A timm transformer: a `blocks` sequence, a patch embedding and a count of prefix tokens."""
    return (isinstance(getattr(module, "blocks", None), nn.Sequential) and hasattr(module, "patch_embed")
            and isinstance(getattr(module, "num_prefix_tokens", None), int))


def token_layers(module: nn.Module) -> list[str]:
    """Each block's MLP hidden units (`blocks.N.mlp.fc1`, where it has one) then the block's output,
    shallow to deep, and the logits."""
    names = dict(module.named_modules())
    layers = []
    for i in range(len(module.blocks)):
        if f"blocks.{i}.mlp.fc1" in names:
            layers.append(f"blocks.{i}.mlp.fc1")
        layers.append(f"blocks.{i}")
    return layers + [LOGITS]


def allow_any_size(module: nn.Module) -> None:
    """Let a timm ViT take images of any size (its position embedding resampled, the image padded to
    whole patches), as its `dynamic_img_size=True, dynamic_img_pad=True` would: renders grow through
    octaves and the robustness transforms rescale them."""
    embed = module.patch_embed
    if not hasattr(module, "dynamic_img_size") or not hasattr(embed, "strict_img_size"):
        return
    from timm.layers import Format

    module.dynamic_img_size = True
    embed.strict_img_size, embed.dynamic_img_pad = False, True
    embed.flatten, embed.output_fmt = False, Format.NHWC


def adapt_tokens(module: nn.Module, names: list[str] | None) -> list[str] | None:
    """For a token model: make it take any size, put its TokenGrid on it and return its layers (the
    given ones, or every block and MLP). Other models: the names unchanged, no adapter."""
    if not is_token_model(module):
        return names
    allow_any_size(module)
    names = names if names is not None else token_layers(module)
    # Every module's token output is laid on the grid: any module is a layer (module_layers.py).
    setattr(module, ADAPTER, TokenGrid(module.num_prefix_tokens, frozenset(n for n, _ in module.named_modules() if n)))
    return names


def _math_kernel_on():
    context = sdpa_kernel([SDPBackend.MATH])
    context.__enter__()
    return lambda: context.__exit__(None, None, None)


_MATH = SharedSwitch(_math_kernel_on)


def math_attention():
    """Scaled dot-product attention through its plain math kernel while inside: the fused kernels (flash
    attention, on CPU too) have no forward-mode derivative and no double backward, which Jacobian-vector
    products through attention need. The kernel choice is process-wide, so users on several threads
    share one switch (models/switches.py)."""
    return _MATH.held()
