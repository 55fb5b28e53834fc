"""FitNet hints (Romero et al., ICLR 2015): a learnable regressor maps a student feature onto a teacher
feature, trained with MSE.

Both features are first brought to (B, C, H, W) by :func:`methods.feature_grid.to_grid`: CNN maps
unchanged; ViT / MLP-Mixer tokens (B, N, C) reshaped to a √N × √N grid, a leading class token
dropped when N is not a perfect square but N − 1 is (other prefix counts: ``num_prefix_tokens``).
The regressor is a 1×1 conv (C_s → C_t, + BatchNorm by default); its output is then resized to the
teacher's H × W (adaptive average pooling when shrinking, bilinear when growing). The loss is the
mean squared error against the detached teacher map.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from methods.feature_grid import resize_to, to_grid
from methods.registry import MethodParams, register

__all__ = ["FitNet", "FitNetHint"]


class FitNetHint(nn.Module):
    """``FitNetHint(C_s, C_t)(student_feat, teacher_feat) -> scalar MSE``; features as maps or tokens."""

    def __init__(self, student_channels: int, teacher_channels: int, batch_norm: bool = True,
                 num_prefix_tokens: int | None = None):
        super().__init__()
        self.num_prefix_tokens = num_prefix_tokens
        conv = nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=not batch_norm)
        self.projector = nn.Sequential(conv, nn.BatchNorm2d(teacher_channels)) if batch_norm else conv

    def project(self, student_feat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Student feature → (B, C_t, *size)."""
        return resize_to(self.projector(to_grid(student_feat, self.num_prefix_tokens)), size)

    def forward(self, student_feat: torch.Tensor, teacher_feat: torch.Tensor) -> torch.Tensor:
        teacher = to_grid(teacher_feat.detach(), self.num_prefix_tokens)
        return F.mse_loss(self.project(student_feat, tuple(teacher.shape[-2:])), teacher)


class FitNetParams(MethodParams):
    ce_weight: float = Field(1.0, ge=0)
    feature_weight: float = Field(1.0, ge=0)
    hint_stage: int = Field(1, ge=0, le=2, description="which of the three feature stages")


@register("image_kd", "fitnet", FitNetParams)
class FitNet(nn.Module):
    """ce_weight · CE + feature_weight · the hint MSE of one student stage onto the teacher's."""

    def __init__(self, params: FitNetParams, student_shapes, teacher_shapes, num_classes: int):
        super().__init__()
        self.params = params
        self.hint = FitNetHint(student_shapes[params.hint_stage][0], teacher_shapes[params.hint_stage][0])

    def loss(self, ce, feats, logits, t_feats, t_logits, labels, progress: float):
        p = self.params
        hint = self.hint(feats[p.hint_stage], t_feats[p.hint_stage])
        return p.ce_weight * ce + p.feature_weight * hint, {"ce": float(ce.detach()), "hint": float(hint.detach())}
