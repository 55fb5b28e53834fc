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

Total loss of the registered method, two forms (``form``):

- ``official_code`` (default; OFA-KD's ``distillers/ofa.py`` and ``train.py``): the sum
  ``gt_loss_weight · CE(final logits)`` (the training criterion: label smoothing 0.1 by default in its
  ``train.py``, given by the engine here) ``+ kd_loss_weight · ofa_loss(final logits)`` ``+
  ofa_loss_weight · Σ_stages ofa_loss(branch logits)``, every ``ofa_loss`` in the released form, with a
  branch on *every* student stage (``--ofa-stage 1 2 3 4``: the last stage too). One CE only.
- ``paper``: ``ce_weight · CE + ofa_weight · Σ`` of the paper's formula over branches on the stages
  but the last plus the final logits; at ε = 1 each paper term already contains a CE, so this form
  has one CE per branch and two on the final logits. Kept as it was first run here (documented in
  replications/uhkd/README.md), not the comparator.

Branches (simplified from the paper's stage-wise SepConv / ViT-block branches): per student stage,
maps (C, H, W): 3×3 conv (C → hidden) + BN + ReLU → global average pool → Linear(hidden → K);
tokens (N, C): LayerNorm → mean over all tokens (class token included) → Linear(C → hidden) + GELU
→ Linear(hidden → K).
"""
from __future__ import annotations

from typing import Literal, Sequence

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
    form: Literal["official_code", "paper"] = Field(
        "official_code", description="official_code: CE + KD (released ofa_loss on the final logits) + the "
        "branches' ofa_loss on every stage; paper: CE + the paper's formula on the branches but the last and the logits")
    ce_weight: float = Field(1.0, ge=0, description="gt-loss-weight")
    kd_weight: float = Field(1.0, ge=0, description="kd-loss-weight (official_code form only)")
    ofa_weight: float = Field(1.0, ge=0, description="ofa-loss-weight")
    ofa_eps: float = Field(1.0, gt=0)
    temperature: float = Field(1.0, gt=0, description="ofa-temperature")


@register("image_kd", "ofa", OFAParams)
class OFA(nn.Module):
    """OFA-KD in one of its two forms (see the module docstring): exit branches on the student's stages
    (all of them in the official form, all but the last in the paper form) and the final logits."""

    def __init__(self, params: OFAParams, student_shapes, teacher_shapes, num_classes: int):
        super().__init__()
        self.params = params
        shapes = student_shapes if params.form == "official_code" else student_shapes[:-1]
        self.branches = OFABranches(shapes, num_classes)

    def loss(self, ce, feats, logits, t_feats, t_logits, labels, progress: float):
        p = self.params
        if p.form == "paper":
            ofa = ofa_total(self.branches(feats[:-1]), logits, t_logits, labels, p.ofa_eps, p.temperature)
            return p.ce_weight * ce + p.ofa_weight * ofa, {"ce": float(ce.detach()), "ofa": float(ofa.detach())}
        kd = ofa_loss(logits, t_logits, labels, p.ofa_eps, p.temperature, official_code=True)
        ofa = sum(ofa_loss(b, t_logits, labels, p.ofa_eps, p.temperature, official_code=True)
                  for b in self.branches(feats))
        total = p.ce_weight * ce + p.kd_weight * kd + p.ofa_weight * ofa
        return total, {"ce": float(ce.detach()), "kd": float(kd.detach()), "ofa": float(ofa.detach())}
