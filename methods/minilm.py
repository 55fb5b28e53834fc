"""MiniLM (Wang et al., NeurIPS 2020, arXiv 2002.10957): deep self-attention distillation.

The student's last layer mimics the teacher's last layer through two KL terms (the caller picks
the layers and feeds their tensors):

* attention-distribution transfer, Eq. 6: L_AT = 1/(A_h·|x|) Σ_a Σ_t KL(A^T_{a,t} ‖ A^S_{a,t});
* value-relation transfer, Eqs. 7–9: VR = softmax(V Vᵀ / √d_k) per head,
  L_VR = 1/(A_h·|x|) Σ_a Σ_t KL(VR^T_{a,t} ‖ VR^S_{a,t});
* total, Eq. 10: L = L_AT + L_VR (no weights).

Both terms need the same head count A_h in student and teacher; hidden sizes may differ.
Conventions: KL is summed over keys, averaged over heads and over the valid query positions of
the whole batch (so a batch mean weights sequences by length); probabilities are clamped at
``EPS`` before the log; computed in float32; the teacher side is detached.
"""
from __future__ import annotations

import math

import torch

from methods.registry import register

__all__ = ["EPS", "attention_distribution_loss", "value_relation", "value_relation_loss", "minilm_loss"]

EPS = 1e-12  # floor for probabilities inside log(): padded keys have probability 0 (or underflow)


def _check_mask(mask: torch.Tensor | None, batch: int, length: int) -> torch.Tensor | None:
    if mask is None:
        return None
    if mask.shape != (batch, length):
        raise ValueError(f"mask shape {tuple(mask.shape)} must be (batch, seq) = {(batch, length)}")
    return mask.bool()


def attention_distribution_loss(student_attn: torch.Tensor, teacher_attn: torch.Tensor,
                                mask: torch.Tensor | None = None, eps: float = EPS) -> torch.Tensor:
    """KL(teacher ‖ student) of attention distributions, Eq. 6; both (B, H, T, S), rows summing to 1.

    ``mask`` (B, T), true for real tokens, selects the query rows that count; padded keys need
    no mask (their probability is ~0 on both sides and 0·log(eps) terms vanish). Returns a scalar:
    the per-row KL (summed over the S keys) averaged over heads and valid (batch, query) rows.
    """
    if student_attn.shape != teacher_attn.shape or student_attn.dim() != 4:
        raise ValueError(f"student {tuple(student_attn.shape)} and teacher {tuple(teacher_attn.shape)} "
                         "must be equal (B, H, T, S) tensors")
    s = student_attn.float().clamp_min(eps).log()
    t = teacher_attn.detach().float()
    per_row = (t * (t.clamp_min(eps).log() - s)).sum(-1)  # (B, H, T)
    mask = _check_mask(mask, per_row.shape[0], per_row.shape[2])
    if mask is not None:
        per_row = per_row.transpose(1, 2)[mask]  # (valid rows, H)
    if per_row.numel() == 0:
        return student_attn.sum() * 0.0
    return per_row.mean()


def value_relation(v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(V Vᵀ / √d_head) per head, Eqs. 7–8: (B, H, T, d) -> (B, H, T, T), rows sum to 1.

    Padded keys (``mask`` (B, T) false) get probability 0. Any per-head vectors work (MiniLMv2
    applies the same relation to queries and keys). Computed in float32.
    """
    if v.dim() != 4:
        raise ValueError(f"expected (B, H, T, d) tensor, got shape {tuple(v.shape)}")
    v = v.float()
    scores = v @ v.transpose(-1, -2) / math.sqrt(v.shape[-1])
    mask = _check_mask(mask, v.shape[0], v.shape[2])
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], torch.finfo(scores.dtype).min)
    return scores.softmax(-1)


def value_relation_loss(student_v: torch.Tensor, teacher_v: torch.Tensor,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL(VR^T ‖ VR^S), Eq. 9, from values (B, H, T, d_s) and (B, H, T, d_t); d_s and d_t may differ."""
    if student_v.dim() != 4 or teacher_v.dim() != 4:
        raise ValueError(f"values must be (B, H, T, d); got {tuple(student_v.shape)} and {tuple(teacher_v.shape)}")
    if student_v.shape[1] != teacher_v.shape[1]:
        raise ValueError(f"MiniLM value-relation transfer needs equal head counts, got student "
                         f"{student_v.shape[1]} and teacher {teacher_v.shape[1]} heads "
                         "(use methods.minilmv2 relation heads for different counts)")
    if student_v.shape[0] != teacher_v.shape[0] or student_v.shape[2] != teacher_v.shape[2]:
        raise ValueError(f"batch/sequence sizes differ: {tuple(student_v.shape)} vs {tuple(teacher_v.shape)}")
    teacher_vr = value_relation(teacher_v.detach(), mask)
    return attention_distribution_loss(value_relation(student_v, mask), teacher_vr, mask)


def minilm_loss(student_attn: torch.Tensor, teacher_attn: torch.Tensor, student_v: torch.Tensor | None,
                teacher_v: torch.Tensor | None, mask: torch.Tensor | None = None,
                value_relation: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 10: ``(L_AT + L_VR, {"attention": L_AT, "value_relation": L_VR})``.

    Attentions (B, H, T, T); values (B, H, T, d). With ``value_relation=False`` only L_AT is used
    (values may be None) and the parts dict has no "value_relation" entry.
    """
    parts = {"attention": attention_distribution_loss(student_attn, teacher_attn, mask)}
    if value_relation:
        if student_v is None or teacher_v is None:
            raise ValueError("value_relation=True needs student_v and teacher_v")
        parts["value_relation"] = value_relation_loss(student_v, teacher_v, mask)
    return sum(parts.values()), parts


class _MiniLMAlignment:
    """:func:`minilm_loss` on the last layer pair (the student's kept heads); attention maps are the
    pre-dropout probabilities of :func:`methods.attention_capture.attention_probs`."""

    value_relation = True

    @staticmethod
    def qkv_layers(layer_map):
        student, teacher = layer_map[-1]
        return [student], [teacher]

    @classmethod
    def loss(cls, layer_map, mask, *, student_qkv, teacher_qkv, kept=None, **unused) -> torch.Tensor:
        from methods.attention_alignment import kept_heads
        from methods.attention_capture import attention_probs

        s_layer, t_layer = layer_map[-1]
        s_qkv, t_qkv = student_qkv[s_layer], teacher_qkv[t_layer]
        heads = kept_heads(kept, s_layer, s_qkv["q"].shape[1])
        with_vr = cls.value_relation
        s_v = s_qkv["v"][:, heads] if with_vr else None
        t_v = t_qkv["v"][:, heads] if with_vr else None
        return minilm_loss(attention_probs(s_qkv, mask)[:, heads], attention_probs(t_qkv, mask)[:, heads], s_v, t_v,
                           mask, value_relation=with_vr)[0]


@register("attention_alignment", "minilm")
class MiniLMAlignment(_MiniLMAlignment):
    """Attention-distribution KL + value-relation KL (MiniLM)."""


@register("attention_alignment", "minilm_no_vr")
class MiniLMNoValueRelationAlignment(_MiniLMAlignment):
    """The attention-distribution term alone (MiniLM Table 5)."""

    value_relation = False
