"""TinyBERT-style layer distillation (Jiao et al., Findings of EMNLP 2020, arXiv 1909.10351), §3.1.

* Attention loss, L_attn = 1/h Σ_i MSE(A^S_i, A^T_i) (Eq. 7 of the arXiv v5 numbering).
  TinyBERT's A is the *unnormalised* score matrix QKᵀ/√d_k. We default to attention
  *probabilities*, because that is what Hugging Face returns with ``output_attentions=True``;
  probabilities are bounded in [0, 1], so the loss scale does not depend on the score range.
  To follow the paper exactly, pass scores recomputed from
  :func:`methods.attention_capture.capture_qkv` (``q @ k.transpose(-1, -2) / d**0.5``, without the
  additive padding mask): any (B, H, T, S) maps are accepted.
* Hidden-state loss, L_hidn = MSE(H^S W_h, H^T) (Eq. 8), with a learnable W_h: :class:`HiddenStateMSE`.

Layer mapping n = g(m) and the loss weights are the caller's. The teacher side is detached.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from methods.registry import register

__all__ = ["attention_mse_loss", "HiddenStateMSE"]


def _masked_mean(sq_err: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return sq_err.mean()
    weight = weight.expand_as(sq_err)
    count = weight.sum()
    return (sq_err * weight).sum() / count if count > 0 else sq_err.sum() * 0.0


def attention_mse_loss(student_attn: torch.Tensor, teacher_attn: torch.Tensor, mask: torch.Tensor | None = None,
                       head_map: Sequence[int] | None = None) -> torch.Tensor:
    """Mean squared error between attention maps (B, H_s, T, T) and (B, H_t, T, T), Eq. 7.

    ``head_map`` lists, for each student head in order, the teacher head it is compared to (e.g.
    a pruned student's ``adapter.kept_heads()`` against its unpruned teacher); without it the
    head counts must be equal and heads pair by position. ``mask`` (B, T), true for real tokens:
    only entries whose query *and* key are real count. The mean over all valid entries equals
    the paper's head average of per-head MSEs when every sequence has the same length.
    """
    if head_map is not None:
        head_map = list(head_map)
        if len(head_map) != student_attn.shape[1]:
            raise ValueError(f"head_map has {len(head_map)} entries for {student_attn.shape[1]} student heads")
        if any(not 0 <= h < teacher_attn.shape[1] for h in head_map):
            raise ValueError(f"head_map {head_map} out of range for {teacher_attn.shape[1]} teacher heads")
        teacher_attn = teacher_attn[:, head_map]
    if student_attn.shape != teacher_attn.shape or student_attn.dim() != 4:
        raise ValueError(f"student {tuple(student_attn.shape)} and teacher {tuple(teacher_attn.shape)} attention "
                         "must be equal (B, H, T, S) shapes (pass head_map when head counts differ)")
    sq_err = (student_attn.float() - teacher_attn.detach().float()) ** 2
    weight = None
    if mask is not None:
        batch, _, length, keys = sq_err.shape
        if mask.shape != (batch, length) or keys != length:
            raise ValueError(f"mask {tuple(mask.shape)} needs (B, T) = {(batch, length)} and square maps")
        m = mask.to(sq_err.dtype)
        weight = (m[:, :, None] * m[:, None, :])[:, None]  # (B, 1, T, T)
    return _masked_mean(sq_err, weight)


class HiddenStateMSE(nn.Module):
    """L_hidn = MSE(H^S W_h, H^T), Eq. 8: a learnable projection student width -> teacher width.

    ``forward(student_hidden (B, T, d_s), teacher_hidden (B, T, d_t), mask (B, T) | None)`` returns
    the squared error averaged over features and valid tokens. ``proj`` is an ``nn.Linear``
    (with bias, as in the official TinyBERT code's ``fit_dense``); train it with the student.
    """

    def __init__(self, student_dim: int, teacher_dim: int, bias: bool = True):
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim, bias=bias)

    def forward(self, student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        projected = self.proj(student_hidden)
        if projected.shape != teacher_hidden.shape:
            raise ValueError(f"projected student {tuple(projected.shape)} != teacher {tuple(teacher_hidden.shape)}")
        sq_err = F.mse_loss(projected.float(), teacher_hidden.detach().float(), reduction="none")
        if mask is not None:
            if mask.shape != sq_err.shape[:2]:
                raise ValueError(f"mask {tuple(mask.shape)} must be (B, T) = {tuple(sq_err.shape[:2])}")
            mask = mask.to(sq_err.dtype)[..., None]
        return _masked_mean(sq_err, mask)


@register("attention_alignment", "attention_mse")
class AttentionMSEAlignment:
    """:func:`attention_mse_loss` on every paired layer (the student's kept heads), averaged over layers."""

    needs_attentions = True

    @staticmethod
    def qkv_layers(layer_map):
        return [], []

    @staticmethod
    def loss(layer_map, mask, *, student_attn, teacher_attn, kept=None, **unused) -> torch.Tensor:
        from methods.attention_alignment import kept_heads

        losses = []
        for s_layer, t_layer in layer_map:
            s = student_attn[s_layer]
            heads = kept_heads(kept, s_layer, s.shape[1])
            if heads:
                losses.append(attention_mse_loss(s[:, heads], teacher_attn[t_layer][:, heads], mask))
        return torch.stack(losses).mean()
