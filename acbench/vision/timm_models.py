"""timm ImageNet architectures fed 32×32 CIFAR images at their own input size (OFA-KD's CIFAR-100 pairs).

OFA-KD trains and distils its CIFAR-100 models (Swin-T, ViT-S, Mixer-B/16, ConvNeXt-T teachers;
ResNet18, MobileNetV2, DeiT-T, ResMLP-S12 students) as timm builds them, at the architectures'
default 224 × 224 input: its loader resizes the CIFAR images. Here the (normalised, augmented) 32×32
batch is resized inside the model (:class:`ResizedTimm`), so the data path, the teacher-output cache
and every distillation method stay those of the 32×32 students.

Stage features for feature-level methods (OFA-KD's ``--ofa-stage 1 2 3 4``): four maps (B, C, H, W)
from timm's ``forward_intermediates``. Hierarchical models (ResNet, MobileNetV2, Swin, ConvNeXt): the
last four feature levels (strides 4-32 or 8-32); isotropic ones (ViT/DeiT, MLP-Mixer, ResMLP): the
outputs of the blocks ending each quarter of the depth (blocks 3, 6, 9, 12 of 12), prefix tokens
dropped. The logits are ``forward_head`` of the final features, which equals ``model(x)``.
"""
from __future__ import annotations

from collections.abc import Sequence

from typing import Literal

import timm
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from acbench.config import Strict

__all__ = ["TimmSpec", "ResizedTimm", "stage_indices", "timm_model"]

STAGES = 4


class TimmSpec(Strict):
    """A timm architecture by name, run at ``img_size`` (None: the architecture's default input size)."""

    kind: Literal["timm"] = "timm"
    name: str = Field(pattern=r"^[a-z0-9_.]+$", description="timm model name, e.g. resnet18, convnext_tiny")
    img_size: int | None = Field(None, ge=32, description="side the CIFAR images are resized to (None: timm's default)")
    pretrained: bool = Field(False, description="timm's ImageNet weights from the model hub (needs the network)")


def stage_indices(model: nn.Module, stages: int = STAGES) -> list[int]:
    """Indices into ``model.feature_info`` of the ``stages`` feature maps (module docstring)."""
    info = getattr(model, "feature_info", None)
    if not info:
        raise TypeError(f"{type(model).__name__} has no feature_info: not a timm model with forward_intermediates")
    count = len(info)
    if count < stages:
        raise ValueError(f"{type(model).__name__} has {count} feature levels, fewer than {stages}")
    reductions = {level["reduction"] for level in info}
    if len(reductions) > 1:  # hierarchical: the deepest `stages` levels
        return list(range(count - stages, count))
    return [count * (i + 1) // stages - 1 for i in range(stages)]


class ResizedTimm(nn.Module):
    """``model(resize(x))`` with ``features_and_logits(x)`` giving its stage maps and logits."""

    def __init__(self, model: nn.Module, img_size: int):
        super().__init__()
        self.model, self.img_size = model, img_size
        self.stages = stage_indices(model)

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.img_size and x.shape[-2] == self.img_size:
            return x
        return F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.resize(x))

    def features_and_logits(self, x: torch.Tensor,
                            stages: Sequence[int] | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(stage maps (B, C, H, W), logits); ``stages`` pick among the four (default all)."""
        final, maps = self.model.forward_intermediates(self.resize(x), indices=self.stages, output_fmt="NCHW")
        wanted = range(len(maps)) if stages is None else stages
        return [maps[i] for i in wanted], self.model.forward_head(final)


def timm_model(spec: TimmSpec, num_classes: int, checkpoint_path: str | None = None) -> ResizedTimm:
    """Build ``spec`` with a ``num_classes`` head (weights from ``checkpoint_path`` when given)."""
    kwargs = {"checkpoint_path": checkpoint_path} if checkpoint_path else {}
    model = timm.create_model(spec.name, pretrained=spec.pretrained, num_classes=num_classes, **kwargs)
    size = spec.img_size or model.pretrained_cfg["input_size"][-1]
    return ResizedTimm(model, size)
