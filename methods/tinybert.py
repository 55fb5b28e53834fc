"""TinyBERT-style layer distillation (Jiao et al., Findings of EMNLP 2020, arXiv 1909.10351), §3.1.

* Attention loss, L_attn = 1/h Σ_i MSE(A^S_i, A^T_i) (Eq. 7 of the arXiv v5 numbering), where A is
  the *unnormalised* score matrix QKᵀ/√d_k. The registered ``attention_mse`` alignment has two forms
  (parameter ``form``):
  - ``scores`` (default), as TinyBERT's official code computes it (``task_distill.py``): per paired
    layer, ``MSELoss`` (mean over all B·H·T·S entries) of the pre-softmax scores with the entries of
    padded keys set to 0 on both sides (the code zeroes values ≤ −1e2, i.e. the additive −10000 mask
    of padded keys; we zero them by the mask, the same unless a real score falls below −100);
    padded *query* rows count, as in the code; the layer losses are **summed**: :func:`attention_score_mse_loss`;
  - ``probabilities``: MSE of attention probabilities over real (query, key) pairs, **averaged** over
    layers (this project's earlier default; bounded in [0, 1], so the scale does not depend on the
    score range): :func:`attention_mse_loss`.
  Both read the maps from captured Q/K (:mod:`methods.attention_capture`), i.e. before attention dropout.
* Hidden-state loss, L_hidn = MSE(H^S W_h, H^T) (Eq. 8), with a learnable W_h: :class:`HiddenStateMSE`.

Layer mapping n = g(m) and the loss weights are the caller's. The teacher side is detached.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from methods.registry import MethodParams, register

__all__ = ["attention_mse_loss", "attention_score_mse_loss", "HiddenStateMSE", "AttentionMSEParams"]


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


def attention_score_mse_loss(student_scores: torch.Tensor, teacher_scores: torch.Tensor,
                             mask: torch.Tensor | None = None) -> torch.Tensor:
    """TinyBERT's per-layer attention loss on pre-softmax scores (B, H, T, S), as its official code.

    Entries whose key is padding (``mask`` (B, S) false) are set to 0 on both sides; the squared
    error is averaged over *all* B·H·T·S entries (padded query rows and the zeroed keys included,
    as ``nn.MSELoss`` does there). The teacher side is detached.
    """
    if student_scores.shape != teacher_scores.shape or student_scores.dim() != 4:
        raise ValueError(f"student {tuple(student_scores.shape)} and teacher {tuple(teacher_scores.shape)} scores "
                         "must be equal (B, H, T, S) shapes")
    student, teacher = student_scores.float(), teacher_scores.detach().float()
    if mask is not None:
        if mask.shape != (student.shape[0], student.shape[-1]):
            raise ValueError(f"mask {tuple(mask.shape)} must be (B, S) = {(student.shape[0], student.shape[-1])}")
        real_key = mask.bool()[:, None, None, :]
        student = student.masked_fill(~real_key, 0.0)
        teacher = teacher.masked_fill(~real_key, 0.0)
    return F.mse_loss(student, teacher)


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


class AttentionMSEParams(MethodParams):
    form: Literal["scores", "probabilities"] = "scores"
    """``scores``: TinyBERT's code (pre-softmax, padded keys zeroed, summed over layers);
    ``probabilities``: MSE of probabilities over real (query, key) pairs, averaged over layers."""


@register("attention_alignment", "attention_mse", AttentionMSEParams)
class AttentionMSEAlignment:
    """TinyBERT's attention MSE on every paired layer (the student's kept heads), in the ``form`` chosen."""

    @staticmethod
    def qkv_layers(layer_map):
        return [s for s, _ in layer_map], [t for _, t in layer_map]

    @staticmethod
    def loss(layer_map, mask, *, student_qkv, teacher_qkv, kept=None, params=AttentionMSEParams(),
             **unused) -> torch.Tensor:
        from methods.attention_alignment import kept_heads
        from methods.attention_capture import attention_probs, attention_scores

        losses = []
        for s_layer, t_layer in layer_map:
            s_qkv, t_qkv = student_qkv[s_layer], teacher_qkv[t_layer]
            heads = kept_heads(kept, s_layer, s_qkv["q"].shape[1])
            if not heads:
                continue
            if params.form == "scores":
                losses.append(attention_score_mse_loss(attention_scores(s_qkv)[:, heads],
                                                       attention_scores(t_qkv)[:, heads], mask))
            else:
                losses.append(attention_mse_loss(attention_probs(s_qkv, mask)[:, heads],
                                                 attention_probs(t_qkv, mask)[:, heads], mask))
        total = torch.stack(losses)
        return total.sum() if params.form == "scores" else total.mean()
