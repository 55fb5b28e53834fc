"""Students for 32×32 images (timm ViT and MLP-Mixer, CIFAR ResNet-20) and their intermediate features.

:func:`features_and_logits` gives every kind the same interface for feature distillation:
a list of (B, C, H, W) feature maps and the logits of the model's ordinary forward pass.

- ResNets (:class:`~acbench.vision.resnet_cifar.ResNetCifar`): ``stages`` index the three stage
  outputs (0, 1, 2), default all: (B,16,32,32), (B,32,16,16), (B,64,8,8).
- timm ImageNet architectures at their own input size (:class:`~acbench.vision.timm_models.ResizedTimm`):
  ``stages`` index its four stage maps, default all.
- ViT / MLP-Mixer: ``stages`` are 0-based block indices (negative ones count from the end), default
  :func:`default_stages`. A block's output tokens (B, N, C) (before the final norm) become
  (B, C, √N', √N') with :func:`methods.feature_grid.to_grid`, dropping the ViT's class token; with
  patch 4 on 32×32 images that is (B, dim, 8, 8). They are captured with forward hooks during the
  normal ``model(x)`` call, so the logits are exactly ``model(x)``.

Features and logits stay in the autograd graph.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.models.mlp_mixer import MlpMixer
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from acbench.vision.resnet_cifar import ResNetCifar, resnet_cifar
from acbench.vision.timm_models import ResizedTimm
from methods.feature_grid import to_grid

__all__ = ["vit_student", "mixer_student", "resnet20", "default_stages", "features_and_logits"]

IMG_SIZE = 32


def vit_student(depth: int, dim: int, heads: int, patch: int = 4, num_classes: int = 10,
                **timm_kwargs) -> VisionTransformer:
    """timm ViT for 32×32 inputs: (32/patch)² patch tokens + a class token, ``depth`` blocks of width ``dim``.

    timm defaults otherwise (MLP ratio 4, class-token pooling, learned position embedding);
    ``timm_kwargs`` (e.g. ``drop_path_rate``) go to ``VisionTransformer``.
    """
    return VisionTransformer(img_size=IMG_SIZE, patch_size=patch, num_classes=num_classes,
                             embed_dim=dim, depth=depth, num_heads=heads, **timm_kwargs)


def mixer_student(depth: int, dim: int, patch: int = 4, num_classes: int = 10, **timm_kwargs) -> MlpMixer:
    """timm MLP-Mixer for 32×32 inputs: (32/patch)² tokens, ``depth`` blocks of width ``dim``.

    timm defaults otherwise (MLP ratios 0.5 tokens / 4 channels, average pooling);
    ``timm_kwargs`` (e.g. ``drop_path_rate``) go to ``MlpMixer``.
    """
    return MlpMixer(num_classes=num_classes, img_size=IMG_SIZE, patch_size=patch, num_blocks=depth,
                    embed_dim=dim, **timm_kwargs)


def resnet20(num_classes: int = 10) -> ResNetCifar:
    """A randomly initialised CIFAR ResNet-20 (option-A shortcuts)."""
    return resnet_cifar(20, num_classes)


def default_stages(depth: int) -> tuple[int, int, int]:
    """0-based indices of the blocks ending each third of ``depth`` blocks: the outputs of blocks
    depth/3, 2·depth/3 and depth (1-based), e.g. (1, 3, 5) for depth 6 and (1, 4, 7) for depth 8."""
    if depth < 3:
        raise ValueError(f"need at least 3 blocks for three feature stages, got depth {depth}")
    return depth // 3 - 1, 2 * depth // 3 - 1, depth - 1


def _indices(stages: Sequence[int], count: int, what: str) -> list[int]:
    out = []
    for s in stages:
        if not -count <= s < count:
            raise IndexError(f"stage {s} out of range for {count} {what}")
        out.append(s % count)
    return out


def _token_features(model: VisionTransformer | MlpMixer, x: torch.Tensor,
                    stages: Sequence[int] | None) -> tuple[list[torch.Tensor], torch.Tensor]:
    if getattr(model, "grad_checkpointing", False):
        raise ValueError("features_and_logits captures block outputs with forward hooks, which gradient "
                         "checkpointing breaks; call model.set_grad_checkpointing(False)")
    blocks: nn.Sequential = model.blocks
    wanted = _indices(default_stages(len(blocks)) if stages is None else stages, len(blocks), "blocks")
    captured: dict[int, torch.Tensor] = {}

    def hook(index: int):
        def save(_module, _inputs, output):
            captured[index] = output
        return save

    handles = [blocks[i].register_forward_hook(hook(i)) for i in sorted(set(wanted))]
    try:
        logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    prefix = getattr(model, "num_prefix_tokens", 0)
    return [to_grid(captured[i], num_prefix_tokens=prefix) for i in wanted], logits


def features_and_logits(model: nn.Module, x: torch.Tensor,
                        stages: Sequence[int] | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(feature maps (B, C, H, W) for ``stages``, logits (B, num_classes)) of ``model`` on ``x`` (B, 3, 32, 32).

    See the module docstring for what ``stages`` means per model kind.
    """
    if isinstance(model, ResizedTimm):
        return model.features_and_logits(x, stages)
    if isinstance(model, ResNetCifar):
        features, logits = model.features_and_logits(x)
        wanted = _indices(range(len(features)) if stages is None else stages, len(features), "stages")
        return [features[i] for i in wanted], logits
    if isinstance(model, (VisionTransformer, MlpMixer)):
        return _token_features(model, x, stages)
    raise TypeError(f"features_and_logits supports ResNetCifar, ResizedTimm, timm VisionTransformer and MlpMixer, "
                    f"got {type(model).__name__}")
