"""Hinton et al. (2015) logit distillation: T² · KL(teacher ‖ student) on temperature-softened outputs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from methods.registry import MethodParams, register

__all__ = ["LogitKD", "kd_kl_loss"]


def kd_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0,
               mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Mean over rows of ``T² · KL(softmax(t/T) ‖ softmax(s/T))``; the class axis is the last one.

    ``mask`` (the logits' shape without the class axis, bool) keeps only the rows that count,
    e.g. the non-padding decoder steps. Logits that must never be chosen should be large negative
    finite numbers, not ``-inf`` (``-inf`` on both sides gives ``0·log(0/0)``). The teacher is
    detached: gradients reach the student only. The T² factor keeps gradient magnitudes
    comparable across temperatures (Hinton et al., §2). ``reduction="none"`` returns the per-row
    values (times T², mask ignored) for callers that average their own way.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    per_row = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)
    if reduction == "none":
        return per_row * temperature ** 2
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if mask is not None:
        if mask.shape != per_row.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} must equal the logits' row shape {tuple(per_row.shape)}")
        per_row = per_row[mask]
    if per_row.numel() == 0:
        return student_logits.sum() * 0.0
    return per_row.mean() * temperature ** 2


class LogitKDParams(MethodParams):
    ce_weight: float = Field(1.0, ge=0)
    kd_weight: float = Field(1.0, ge=0)
    temperature: float = Field(4.0, gt=0)


@register("image_kd", "kd", LogitKDParams)
class LogitKD(nn.Module):
    """ce_weight · CE + kd_weight · T² · KL on a classifier's logits (no learnable parts)."""

    def __init__(self, params: LogitKDParams, student_shapes, teacher_shapes, num_classes: int):
        super().__init__()
        self.params = params

    def loss(self, ce, feats, logits, t_feats, t_logits, labels, progress: float):
        p = self.params
        kd = kd_kl_loss(logits, t_logits, p.temperature)
        return p.ce_weight * ce + p.kd_weight * kd, {"ce": float(ce.detach()), "kd": float(kd.detach())}
