"""Decoupled Knowledge Distillation (Zhao et al., CVPR 2022): KD split into target / non-target parts.

    DKD = alpha · TCKD + beta · NCKD, both × T²
    TCKD = KL([p_t, 1 − p_t]_teacher ‖ [p_t, 1 − p_t]_student)        (binary: target vs. the rest)
    NCKD = KL(softmax over non-target classes, teacher ‖ student)

with p = softmax(logits / T). As in mdistiller, NCKD masks the target by subtracting 1000 from its
temperature-scaled logit before the softmax, and the batch reduction is the mean over rows. TCKD is
computed from log-sum-exps (log p_t and log(1 − p_t) without ``log(softmax)``), which is the same
quantity, numerically safer. For one sample, KD = TCKD + (1 − p_t^teacher) · NCKD (paper, Eq. 3).
The teacher is detached. mdistiller's linear warm-up of the DKD weight belongs to the training loop.
"""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from methods.logit_kd import kd_kl_loss
from methods.registry import MethodParams, register

__all__ = ["DKD", "dkd_loss"]

_MASK = 1000.0  # subtracted from the target's logit / T (mdistiller's constant)


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor,
             alpha: float = 1.0, beta: float = 8.0, temperature: float = 4.0) -> torch.Tensor:
    """DKD loss (scalar) for logits (B, K) and integer targets (B,)."""
    if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"expected equal (B, K) logits, got {tuple(student_logits.shape)} and "
                         f"{tuple(teacher_logits.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    gt = torch.zeros_like(student_logits, dtype=torch.bool).scatter_(1, target.view(-1, 1), True)
    t = temperature

    def binary(logits: torch.Tensor) -> torch.Tensor:  # (B, 2) logits of [target, rest] at T = 1
        scaled = logits / t
        return torch.stack([scaled[gt], scaled.masked_fill(gt, float("-inf")).logsumexp(1)], dim=1)

    tckd = kd_kl_loss(binary(student_logits), binary(teacher_logits.detach()), 1.0) * t ** 2
    shift = gt.to(student_logits.dtype) * (_MASK * t)  # = 1000 after the division by T in kd_kl_loss
    nckd = kd_kl_loss(student_logits - shift, teacher_logits.detach() - shift, t)
    return alpha * tckd + beta * nckd


class DKDParams(MethodParams):
    ce_weight: float = Field(1.0, ge=0)
    dkd_alpha: float = 1.0
    dkd_beta: float = 8.0
    temperature: float = Field(4.0, gt=0)
    warmup: float = Field(0.1, ge=0, le=1, description="fraction of training over which the DKD weight ramps up")


@register("image_kd", "dkd", DKDParams)
class DKD(nn.Module):
    """ce_weight · CE + ramp · DKD, the ramp linear over ``warmup`` of training (mdistiller)."""

    def __init__(self, params: DKDParams, student_shapes, teacher_shapes, num_classes: int):
        super().__init__()
        self.params = params

    def loss(self, ce, feats, logits, t_feats, t_logits, labels, progress: float):
        p = self.params
        dkd = dkd_loss(logits, t_logits, labels, p.dkd_alpha, p.dkd_beta, p.temperature)
        ramp = min(1.0, progress / p.warmup) if p.warmup > 0 else 1.0
        return p.ce_weight * ce + ramp * dkd, {"ce": float(ce.detach()), "dkd": float(dkd.detach())}
