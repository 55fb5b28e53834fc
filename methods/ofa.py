"""OFA-KD (Hao et al., NeurIPS 2023, "One-for-All: Bridge the Gap Between Heterogeneous Architectures
in Knowledge Distillation"): distil in logit space only, from exit branches on intermediate student
stages plus the final head, with an adaptive target-enhanced loss.

Loss (paper's formula), with p = softmax(logits / T), ĉ the true class and ε the modulating exponent:

    L_OFA = −(1 + p_t,ĉ)^ε · log p_s,ĉ  −  Σ_{c≠ĉ} p_t,c · log p_s,c          (mean over the batch)

At ε = 1 this is CE(s, ĉ) + KL(p_t ‖ p_s) + H(p_t): the paper folds the label term into the loss, and
ε > 1 strengthens it when the teacher is confident. For fixed teacher the loss is minimised by
p_s ∝ the weights above, not by p_s = p_t. No T² factor (as in the official code).
``official_code=True`` reproduces the released ``ofa_loss`` instead: target weight (1 + p_t,ĉ)^ε − 1
(the CE part removed; the training loop adds CE on the final logits) and p_t,c^ε off target; at
ε = 1 that is soft-target cross-entropy = KL(p_t ‖ p_s) + H(p_t).

Branches (simplified from the paper's stage-wise SepConv / ViT-block branches): per student stage,
maps (C, H, W): 3×3 conv (C → hidden) + BN + ReLU → global average pool → Linear(hidden → K);
tokens (N, C): LayerNorm → mean over all tokens (class token included) → Linear(C → hidden) + GELU
→ Linear(hidden → K).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from methods.registry import MethodParams, register

__all__ = ["OFA", "OFABranches", "ofa_loss", "ofa_total"]


def ofa_loss(logits_s: torch.Tensor, logits_t: torch.Tensor, target: torch.Tensor, eps: float = 1.0,
             temperature: float = 1.0, *, official_code: bool = False) -> torch.Tensor:
    """L_OFA (scalar) for logits (B, K) and integer targets (B,); the teacher is detached."""
    if logits_s.dim() != 2 or logits_s.shape != logits_t.shape:
        raise ValueError(f"expected equal (B, K) logits, got {tuple(logits_s.shape)} and {tuple(logits_t.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p_s = F.log_softmax(logits_s / temperature, dim=1)
    p_t = F.softmax(logits_t.detach() / temperature, dim=1)
    onehot = F.one_hot(target, logits_s.shape[1]).to(p_t.dtype)
    if official_code:
        weight = (p_t + onehot) ** eps - onehot
    else:
        weight = torch.where(onehot.bool(), (1.0 + p_t) ** eps, p_t)
    return -(weight * log_p_s).sum(1).mean()


def ofa_total(branch_logits: Sequence[torch.Tensor], final_logits: torch.Tensor, teacher_logits: torch.Tensor,
              target: torch.Tensor, eps: float | Sequence[float] = 1.0, temperature: float = 1.0,
              *, official_code: bool = False) -> torch.Tensor:
    """Σ over the branch outputs and the final logits of :func:`ofa_loss` against the same teacher.
    ``eps`` is one value or one per stage (branches first, final logits last)."""
    stages = [*branch_logits, final_logits]
    eps = [eps] * len(stages) if isinstance(eps, (int, float)) else list(eps)
    if len(eps) != len(stages):
        raise ValueError(f"{len(eps)} eps values for {len(stages)} stages (branches + final)")
    return sum(ofa_loss(s, teacher_logits, target, e, temperature, official_code=official_code)
               for s, e in zip(stages, eps))


class OFABranches(nn.Module):
    """Exit branches: ``OFABranches([(C, H, W) or (N, C), ...], K)(feats) -> [(B, K), ...]``."""

    def __init__(self, feature_shapes: Sequence[Sequence[int]], num_classes: int, hidden_dim: int = 256):
        super().__init__()
        self.kinds = []
        branches = []
        for shape in feature_shapes:
            if len(shape) == 3:
                self.kinds.append("map")
                branches.append(nn.Sequential(
                    nn.Conv2d(shape[0], hidden_dim, 3, padding=1, bias=False), nn.BatchNorm2d(hidden_dim),
                    nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(hidden_dim, num_classes)))
            elif len(shape) == 2:
                self.kinds.append("tokens")
                branches.append(nn.ModuleDict({"norm": nn.LayerNorm(shape[1]), "head": nn.Sequential(
                    nn.Linear(shape[1], hidden_dim), nn.GELU(), nn.Linear(hidden_dim, num_classes))}))
            else:
                raise ValueError(f"feature shape must be (C, H, W) or (N, C) without batch, got {tuple(shape)}")
        self.branches = nn.ModuleList(branches)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(feats) != len(self.branches):
            raise ValueError(f"{len(feats)} features for {len(self.branches)} branches")
        out = []
        for kind, branch, x in zip(self.kinds, self.branches, feats):
            out.append(branch(x) if kind == "map" else branch["head"](branch["norm"](x).mean(1)))
        return out


class OFAParams(MethodParams):
    ce_weight: float = Field(1.0, ge=0)
    ofa_weight: float = Field(1.0, ge=0)
    ofa_eps: float = Field(1.0, gt=0)


@register("image_kd", "ofa", OFAParams)
class OFA(nn.Module):
    """ce_weight · CE + ofa_weight · Σ over exit branches on the student stages (all but the last) and
    the final logits of OFA's loss."""

    def __init__(self, params: OFAParams, student_shapes, teacher_shapes, num_classes: int):
        super().__init__()
        self.params = params
        self.branches = OFABranches(student_shapes[:-1], num_classes)

    def loss(self, ce, feats, logits, t_feats, t_logits, labels, progress: float):
        p = self.params
        ofa = ofa_total(self.branches(feats[:-1]), logits, t_logits, labels, p.ofa_eps)
        return p.ce_weight * ce + p.ofa_weight * ofa, {"ce": float(ce.detach()), "ofa": float(ofa.detach())}
